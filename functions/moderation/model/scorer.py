"""The lean scorer: the trained model evaluated with numpy alone (no scikit-learn).

Gathers use ``np.take`` rather than indexing with an array, as ``features`` explains."""

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from moderation.errors import BundleError
from moderation.labels import LABELS, decide
from moderation.model.explain import Explanation, find_spans, fold_with_offsets
from moderation.model.features import (
    char_ngram_keys,
    char_ngram_keys_many,
    lookup_keys,
    word_vector_features,
)
from moderation.text import WORD_RE, normalize_text, token_ngrams

if TYPE_CHECKING:  # the bundle module builds scorers; a run-time import would be circular
    from moderation.model.bundle import BundleMetadata


class StackedVectors:
    """The stacked word-vector model's share of each label's logit: the comment's mean word
    vector through one hidden layer per label (ReLU), already weighted and calibrated for
    the sum by training (its output bias sits in the scorer's intercept)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        try:
            words = arrays["vector_words"].tobytes().decode("utf-8").split("\n")
            rows = arrays["vector_rows"].tolist()
            table = arrays["vector_table"]
            self._hidden_weights = arrays["vector_hidden_weights"]
            self._hidden_bias = arrays["vector_hidden_bias"]
            self._output_weights = arrays["vector_output_weights"]
        except (KeyError, UnicodeDecodeError) as exc:
            raise BundleError(f"bundle's word-vector model is incomplete ({exc})") from None
        units = self._hidden_bias.shape[0]
        if (
            len(words) != len(rows)
            or max(rows, default=0) >= table.shape[0]
            or self._hidden_weights.shape != (table.shape[1] + 1, units)
            or self._output_weights.shape != (units, len(LABELS))
        ):
            raise BundleError("bundle's word-vector arrays do not fit together")
        self._index = dict(zip(words, rows, strict=True))
        self._table = table.astype(np.float32)  # stored as float16

    def features(self, tokens: list[str]) -> np.ndarray:
        return word_vector_features(tokens, self._index, self._table)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logit shares for one comment's features or a matrix of them, one row each."""
        hidden = np.maximum(features @ self._hidden_weights + self._hidden_bias, 0.0)
        return hidden @ self._output_weights


class Scorer:
    """Scores comments with numpy alone; the same maths as the training pipeline. The
    explanations name n-grams only: the stacked model's share is not broken down."""

    def __init__(
        self,
        metadata: "BundleMetadata",
        arrays: dict[str, np.ndarray],
        words: list[str],
        char_vocabulary_text: str,
    ) -> None:
        spec = metadata.features
        if len(words) != spec.n_word or arrays["coef"].shape != (
            spec.n_word + spec.n_char,
            len(LABELS),
        ):
            raise BundleError("bundle arrays do not match their feature spec")
        self.metadata = metadata
        self._word_index = dict(zip(words, range(len(words)), strict=True))
        self._words = words
        self._char_min, self._char_max = spec.char_ngram_range
        self._word_range = tuple(spec.word_ngram_range)
        self._n_word = spec.n_word
        self._idf = arrays["idf"].astype(np.float64)
        # float32 as stored: values (float64) @ rows promotes per call, no 24 MB copy
        self._coef = arrays["coef"]
        self._intercept = arrays["intercept"].astype(np.float64)
        self._table_keys = arrays["char_table_keys"]
        self._table_values = arrays["char_table_values"]
        self._char_vocabulary_text = char_vocabulary_text
        self._bits = spec.char_table_bits
        self.thresholds = np.array([metadata.thresholds[label] for label in LABELS])
        self._vectors = StackedVectors(arrays) if spec.word_vectors else None

    @property
    def model_name(self) -> str:
        return self.metadata.model_name

    @property
    def version(self) -> str | None:
        return self.metadata.version

    def _block(
        self, ids: np.ndarray, counts: np.ndarray, offset: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear TF-IDF, l2-normalised, for one vectorizer's distinct feature ids and
        how often each occurs."""
        if ids.size == 0:
            return ids.astype(np.int64), np.empty(0)
        ids = ids.astype(np.int64) + offset
        values = (np.log(counts) + 1.0) * np.take(self._idf, ids)
        return ids, values / math.sqrt(float(values @ values))

    def _word_ids(self, tokens: list[str]) -> list[int]:
        """Vocabulary positions of the comment's word n-grams (unknown ones dropped)."""
        get = self._word_index.get
        return [i for i in map(get, token_ngrams(tokens, self._word_range)) if i is not None]

    def features(
        self, normalized: str, tokens: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feature ids and TF-IDF values of a normalised comment (``tokens``: its words by
        ``WORD_RE``, when the caller has them)."""
        word_ids = self._word_ids(WORD_RE.findall(normalized) if tokens is None else tokens)
        w_ids, w_counts = np.unique(np.asarray(word_ids, dtype=np.int64), return_counts=True)
        w_idx, w_val = self._block(w_ids, w_counts, 0)
        # distinct keys first: a long comment repeats most of its short n-grams, so the
        # table is probed about a third as often, and the counts come with them
        keys, counts = np.unique(
            char_ngram_keys(normalized, self._char_min, self._char_max), return_counts=True
        )
        found, char_ids = lookup_keys(keys, self._table_keys, self._table_values, self._bits)
        c_idx, c_val = self._block(char_ids, counts[found], self._n_word)
        return np.concatenate((w_idx, c_idx)), np.concatenate((w_val, c_val))

    def score_normalized(self, normalized: str) -> np.ndarray:
        """Probabilities of the six labels for an already normalised comment."""
        tokens = WORD_RE.findall(normalized)
        idx, values = self.features(normalized, tokens)
        logits = values @ np.take(self._coef, idx, axis=0) + self._intercept
        if self._vectors is not None:
            logits += self._vectors.logits(self._vectors.features(tokens))
        return 1.0 / (1.0 + np.exp(-logits))

    def score(self, text: str) -> np.ndarray:
        return self.score_normalized(normalize_text(text))

    def score_many(self, texts: list[str]) -> np.ndarray:
        return self.score_many_normalized([normalize_text(text) for text in texts])

    def score_many_normalized(self, normalized: list[str]) -> np.ndarray:
        """``score_normalized`` of many comments in one vectorised pass (same results to
        float rounding): one char n-gram hash and one table lookup for the whole batch,
        TF-IDF per (comment, feature) pair, logits by weighted bincounts."""
        n_docs = len(normalized)
        if n_docs == 0:
            return np.empty((0, len(LABELS)))
        word_docs: list[int] = []
        word_ids: list[int] = []
        tokens = [WORD_RE.findall(text) for text in normalized]
        for doc, words in enumerate(tokens):
            ids = self._word_ids(words)
            word_ids += ids
            word_docs += [doc] * len(ids)
        keys, key_docs = char_ngram_keys_many(normalized, self._char_min, self._char_max)
        found, char_ids = lookup_keys(keys, self._table_keys, self._table_values, self._bits)
        blocks = (
            self._block_many(np.asarray(word_docs), np.asarray(word_ids), 0, n_docs),
            self._block_many(key_docs[found], char_ids, self._n_word, n_docs),
        )
        docs = np.concatenate([b[0] for b in blocks])
        features = np.concatenate([b[1] for b in blocks])
        values = np.concatenate([b[2] for b in blocks])
        weights = np.take(self._coef, features, axis=0)
        logits = np.column_stack(
            [
                np.bincount(docs, values * weights[:, j], minlength=n_docs)
                for j in range(weights.shape[1])
            ]
        )
        logits += self._intercept
        if self._vectors is not None:
            features = np.array([self._vectors.features(words) for words in tokens])
            logits += self._vectors.logits(features)
        return 1.0 / (1.0 + np.exp(-logits))

    def _block_many(
        self, docs: np.ndarray, ids: np.ndarray, offset: int, n_docs: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_block`` for many comments: (comment, feature id, l2-normalised TF-IDF)."""
        if ids.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0)
        width = np.int64(self._idf.size)
        pairs, counts = np.unique(docs.astype(np.int64) * width + ids, return_counts=True)
        docs, features = pairs // width, pairs % width + offset
        values = (np.log(counts) + 1.0) * np.take(self._idf, features)
        norms = np.sqrt(np.bincount(docs, values * values, minlength=n_docs))
        return docs, features, values / norms[docs]

    def decide(
        self, scores: np.ndarray, thresholds: np.ndarray | None = None
    ) -> tuple[list[str], str]:
        """Labels over threshold and the allow/review/block decision (see DECISION_RULE)."""
        review_at = self.thresholds if thresholds is None else thresholds
        return decide(
            dict(zip(LABELS, scores.tolist(), strict=True)),
            dict(zip(LABELS, review_at.tolist(), strict=True)),
            self.metadata.block_thresholds,
        )

    def explain(self, text: str, labels: list[str], top_k: int = 5) -> dict[str, list[Explanation]]:
        """The n-grams that pushed each label's score up most, with offsets into ``text``."""
        normalized = normalize_text(text)
        idx, values = self.features(normalized)
        folded, bounds = fold_with_offsets(text)
        result: dict[str, list[Explanation]] = {}
        for label in labels:
            contributions = values * self._coef[idx, LABELS.index(label)]
            order = np.argsort(-contributions)[:top_k]
            result[label] = [
                Explanation(
                    ngram=(gram := self._ngram_text(int(idx[i]))),
                    weight=round(float(contributions[i]), 6),
                    spans=find_spans(gram, folded, bounds, word=int(idx[i]) < self._n_word),
                )
                for i in order
                if contributions[i] > 0
            ]
        return result

    def _ngram_text(self, feature: int) -> str:
        if feature < self._n_word:
            return self._words[feature]
        return self._char_vocabulary[feature - self._n_word]

    @cached_property
    def _char_vocabulary(self) -> list[str]:
        """Split on first use: only explanations need char n-gram texts."""
        return self._char_vocabulary_text.split("\n")
