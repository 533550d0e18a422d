"""The lean scorer: parity with scikit-learn, no heavy imports, integrity, explanations."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from moderation.errors import BundleError
from moderation.labels import LABELS
from moderation.model.bundle import load_bundle
from moderation.text import normalize_text


def awkward_texts(jigsaw_test: pd.DataFrame) -> list[str]:
    unicode_rows = jigsaw_test[~jigsaw_test.comment_text.map(str.isascii)].comment_text.head(200)
    long_text = " ".join(jigsaw_test.comment_text.head(60))[:10_000]
    return [
        *unicode_rows,
        long_text,
        "🔥" * 500,
        "you 🤡 clown 😂😂 ",
        "ＹＯＵ ＩＤＩＯＴ",
        "Ｆｕｃｋ ｏｆｆ",
        "",
        "   ",
        "\u200b\u200b",
        "a",
        "!!!",
        "lone \ud800 surrogate",
        "مرحبا بك اين انت",
        "日本語のコメントです",
    ]


def test_parity_with_scikit_learn_on_real_comments(trained, scorer, jigsaw_train, jigsaw_test):
    # GIVEN 2,000 real comments plus unicode, emoji, very long and empty ones
    real = [*jigsaw_test.comment_text, *jigsaw_train.comment_text][:2000]
    texts = [*real, *awkward_texts(jigsaw_test)]
    assert len(texts) >= 2000
    normalized = [normalize_text(t) for t in texts]
    # WHEN both score them  THEN probabilities agree to 1e-6
    reference = trained.pipeline.predict_proba(normalized)
    lean = scorer.score_many(texts)
    assert lean.shape == reference.shape == (len(texts), len(LABELS))
    assert np.abs(lean - reference).max() <= 1e-6


def test_batch_scoring_equals_one_by_one(scorer, jigsaw_test):
    # GIVEN real comments and the edge cases: empty after normalisation, one letter, emoji
    texts = [*jigsaw_test["comment_text"].head(300), "", "\u200b", "a", "😀" * 40, "x" * 12_000]
    # WHEN scored in one vectorised batch THEN each row is the one-by-one score
    batch = scorer.score_many(texts)
    single = np.vstack([scorer.score(text) for text in texts])
    assert batch.shape == (len(texts), 6)
    assert np.abs(batch - single).max() < 1e-12
    assert scorer.score_many([]).shape == (0, 6)


def test_serving_path_never_imports_scikit_learn_or_scipy(trained):
    code = (
        "import sys; from pathlib import Path; from moderation.model.bundle import load_bundle;"
        f"s = load_bundle(Path({str(trained.bundle_dir)!r})); s.score('you idiot');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn','scipy','pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bundle_carries_what_serving_and_monitoring_need(trained):
    meta = json.loads((trained.bundle_dir / "metadata.json").read_text())
    assert meta["labels"] == list(LABELS)
    assert set(meta["thresholds"]) == set(meta["block_thresholds"]) == set(LABELS)
    assert meta["git_commit"] and meta["created_at"] and meta["model_name"]
    assert all(len(f["sha256"]) == 64 for f in meta["data"]["files"])
    assert meta["metrics"]["validation"]["mean_roc_auc"] > 0.85
    reference = meta["reference"]
    assert set(reference["positive_rate"]) == set(LABELS)
    assert all(sum(h) == reference["rows"] for h in reference["score_histograms"].values())


def test_tampered_bundle_is_refused(trained, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(trained.bundle_dir, copy)
    with (copy / "arrays.npz").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(copy)


def test_bundle_at_wrong_address_is_refused(trained):
    with pytest.raises(BundleError, match="does not match"):
        load_bundle(trained.bundle_dir, expected_sha256="0" * 64)


def test_scores_are_probabilities_and_decisions_follow_thresholds(scorer):
    scores = scorer.score("you are a stupid idiot and I hate you")
    assert ((scores >= 0) & (scores <= 1)).all()
    labels, decision = scorer.decide(scores)
    assert labels == [
        label for label, s, t in zip(LABELS, scores, scorer.thresholds, strict=True) if s >= t
    ]
    lenient = np.ones(len(LABELS))
    assert scorer.decide(scores, lenient) == ([], "allow")


def test_explanations_point_at_the_offending_words(scorer):
    text = "Thanks for the edit. You are an IDIOT."
    explanation = scorer.explain(text, ["insult"], top_k=3)["insult"]
    assert explanation, "an insult must have contributing n-grams"
    for item in explanation:
        assert item.weight > 0
        for start, end in item.spans:  # each span, folded, is the n-gram itself
            assert normalize_text(text[start:end]) == item.ngram.strip()
    assert any("idiot" in normalize_text(text[s:e]) for i in explanation for s, e in i.spans)


def test_every_explained_ngram_is_found_in_the_text_across_punctuation(scorer):
    # word bigrams skip punctuation and one-letter words: "shut up, you" gives "up you"
    text = "Shut up, you are a STUPID idiot!!"
    explained = scorer.explain(text, ["toxic", "insult"], top_k=10)
    items = [item for label in explained.values() for item in label]
    assert items
    for item in items:
        assert item.spans, f"{item.ngram!r} has no span in the text"
    word_spans = [text[s:e] for i in items if " " in i.ngram for s, e in i.spans]
    assert any("," in span for span in word_spans) or any(" a " in s for s in word_spans)


class TestBehaviour:
    """Made-With-ML style behavioural checks on the trained model."""

    def test_invariance_to_case_and_spacing(self, scorer):
        assert np.allclose(scorer.score("You are an idiot"), scorer.score("you  are an IDIOT"))

    def test_directional_adding_an_insult_raises_insult_score(self, scorer):
        base = scorer.score("thanks for fixing the article")
        worse = scorer.score("thanks for fixing the article, you stupid idiot")
        assert worse[LABELS.index("insult")] > base[LABELS.index("insult")]
        assert worse[LABELS.index("toxic")] > base[LABELS.index("toxic")]

    def test_minimum_functionality(self, scorer):
        _, polite = scorer.decide(scorer.score("I added a citation to the second paragraph."))
        _, rude = scorer.decide(scorer.score("shut up you fucking idiot"))
        assert polite == "allow" and rude in ("review", "block")
