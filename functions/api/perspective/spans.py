"""Where Perspective's span scores go: one span per sentence, as Perspective scores them."""

import re

# A sentence: up to and including its closing punctuation run, or a line break, or the end.
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``[begin, end)`` offsets (code points) of each sentence of ``text``, surrounding
    whitespace left out, empty sentences skipped; the whole text when it has one."""
    spans = []
    for match in _SENTENCE.finditer(text):
        begin, end = match.span()
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if end > begin:
            spans.append((begin, end))
    return spans
