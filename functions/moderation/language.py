"""The language a comment is written in, as the service records and returns it, and which
languages the toxicity model was trained for. ``moderation.model.language_id`` detects it.

The model that scores toxicity was trained on English. A comment is taken as written in
another language only when it has ``MIN_WORDS`` words and the identifier is confident
(``MIN_CONFIDENCE``): short or slangy English ("thx", "ya mum") reads to the identifier as
anything, so shorter comments are undetermined (``und``) and scored as English.
"""

from typing import Final

from pydantic import BaseModel, Field

#: ISO 639-1 codes the toxicity model was trained for
SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = ("en",)

#: Confidence from which a comment counts as written in the detected language, and the
#: fewest words for which a language is detected at all. Chosen on validation (``make
#: bench-language``): 0.17% of English validation comments (Jigsaw and the extra sources)
#: are taken for another language, 91% of the hand-written comments in eight other
#: languages (training/suites/languages.csv) are caught.
MIN_CONFIDENCE: Final[float] = 0.75
MIN_WORDS: Final[int] = 3
UNDETERMINED: Final[str] = "und"


class DetectedLanguage(BaseModel):
    """The most likely language of a comment and the identifier's confidence in it."""

    code: str = Field(description="ISO 639-1 code (ISO 639-3 where there is none)")
    confidence: float = Field(ge=0, le=1)

    @property
    def supported(self) -> bool:
        """Whether the toxicity model can judge the comment: English, or no language
        detected with confidence (which is how short English reads to the identifier)."""
        return (
            self.code in SUPPORTED_LANGUAGES
            or self.code == UNDETERMINED
            or self.confidence < MIN_CONFIDENCE
        )
