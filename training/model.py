"""The scikit-learn training pipeline and its export to the lean bundle.

Per label: word and char n-gram TF-IDF, optional Naive-Bayes log-count-ratio feature scaling,
logistic regression. Stacked on it, a small network per label over the comment's mean
pretrained word vector (``WordVectorModel``), whose logit is added with a per-label weight
chosen on validation; then Platt calibration of the sum on real-rate validation rows. Every
step after the n-gram vectorizers is linear, so ``export_arrays`` folds them into one weight
matrix, and the network's layers go to the bundle as plain arrays.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from moderation.labels import LABELS
from moderation.model.features import build_key_table, char_ngram_keys, word_vector_features
from moderation.text import WORD_PATTERN, WORD_RE
from training.word_vectors import WordVectors

EXTRA_WEIGHTS: dict[str, float] = {
    "civil_toxic_spans": 0.1,
    "stormfront": 0.1,
    "toxigen_prompts": 0.1,
    "hatemoji_build": 0.1,
}


@dataclass(frozen=True)
class Hyperparameters:
    word_ngram_range: tuple[int, int] = (1, 2)
    # vocabulary sizes and C were chosen on validation mean ROC-AUC (the W&B runs hold the
    # search); the bundle's size follows the two vocabularies
    word_max_features: int = 100_000
    word_min_df: int = 2
    char_ngram_range: tuple[int, int] = (1, 5)
    char_max_features: int = 150_000
    char_min_df: int = 3
    C: float = 0.35
    naive_bayes: bool = True
    class_weight: str | None = None
    # weight of each extra source's rows against a Jigsaw row's 1 (chosen on validation,
    # see docs/model-card.md)
    extra_weights: dict[str, float] = field(default_factory=lambda: dict(EXTRA_WEIGHTS))
    max_iter: int = 500
    # the stacked word-vector model (docs/model-card.md: chosen on validation): hidden units
    # per label, L2 penalty, and the extra sources' row weight, higher than the n-gram
    # model's because the blend weight, not this, limits what it costs Jigsaw
    word_vectors: bool = True
    vector_hidden: int = 64
    vector_alpha: float = 1e-3
    vector_extra_weight: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _fit_label(
    features: sparse.csr_matrix, y: np.ndarray, weights: np.ndarray, hp: Hyperparameters
) -> tuple[np.ndarray, np.ndarray, float]:
    """NB ratio, LR weights and intercept for one label, on the rows where it is known
    (``y`` is NaN where a source says nothing about the label), weighted per row."""
    known = ~np.isnan(y)
    if not known.all():
        features, y, weights = features[known], y[known], weights[known]
    y = y.astype(np.int8)
    if hp.naive_bayes:
        # Per-document (weighted) means with +1 smoothing (Wang & Manning's NB-SVM as in the
        # Jigsaw baselines): rare n-grams shrink towards a ratio of 0.
        ratio = np.log(_smoothed_mean(features, weights, y == 1))
        ratio -= np.log(_smoothed_mean(features, weights, y == 0))
        features = features @ sparse.diags(ratio)
    else:
        ratio = np.ones(features.shape[1])
    model = LogisticRegression(
        C=hp.C, solver="liblinear", max_iter=hp.max_iter, class_weight=hp.class_weight
    )
    model.fit(features, y, sample_weight=weights)
    return ratio, model.coef_.ravel().copy(), float(model.intercept_[0])


def _smoothed_mean(
    features: sparse.csr_matrix, weights: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Weighted mean feature vector of ``rows``, with one pseudo-document of all ones."""
    w = weights[rows]
    return (np.asarray(w @ features[rows]).ravel() + 1.0) / (w.sum() + 1.0)


class WordVectorModel:
    """One single-hidden-layer network per label over ``word_vector_features``, fitted on
    the rows where the label is known, inputs standardised on the training rows."""

    def __init__(self, vectors: WordVectors, hp: Hyperparameters) -> None:
        self.vectors = vectors
        self.hp = hp
        self.index = vectors.index()
        self.table = vectors.table.astype(np.float32)  # as the scorer widens the stored table
        self.networks: list[MLPClassifier | None] = []
        self.mean = np.zeros(vectors.table.shape[1] + 1)
        self.scale = np.ones(vectors.table.shape[1] + 1)

    def features(self, normalized_texts: list[str]) -> np.ndarray:
        rows = [
            word_vector_features(WORD_RE.findall(text), self.index, self.table)
            for text in normalized_texts
        ]
        return np.array(rows) if rows else np.zeros((0, self.vectors.table.shape[1] + 1))

    def fit(self, features: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> None:
        self.mean, self.scale = features.mean(0), features.std(0) + 1e-6
        inputs = (features - self.mean) / self.scale
        self.networks = Parallel(n_jobs=-1)(
            delayed(_fit_network)(inputs, targets[:, j], weights, self.hp)
            for j in range(len(LABELS))
        )

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Each label's network logit (0 for a label whose training rows had one class)."""
        inputs = (features - self.mean) / self.scale
        columns = []
        for network in self.networks:
            if network is None:
                columns.append(np.zeros(len(features)))
                continue
            hidden = np.maximum(inputs @ network.coefs_[0] + network.intercepts_[0], 0.0)
            columns.append((hidden @ network.coefs_[1] + network.intercepts_[1]).ravel())
        return np.column_stack(columns)

    def export_arrays(self, output_scale: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The bundle's arrays (standardisation folded into the first layer, the hidden units
        of each label with a non-zero ``output_scale`` side by side, the output layer
        block-diagonal and multiplied by ``output_scale``), and the output biases so scaled,
        for the intercept."""
        hidden = self.hp.vector_hidden
        used = [
            j
            for j, network in enumerate(self.networks)
            if network is not None and output_scale[j] != 0
        ]  # a label the blend gives no weight costs nothing at serving
        width = len(self.mean)
        first = np.zeros((width, hidden * len(used)))
        first_bias = np.zeros(hidden * len(used))
        second = np.zeros((hidden * len(used), len(LABELS)))
        bias = np.zeros(len(LABELS))
        for position, j in enumerate(used):
            network = self.networks[j]
            units = slice(position * hidden, (position + 1) * hidden)
            first[:, units] = network.coefs_[0] / self.scale[:, None]
            shift = (self.mean / self.scale) @ network.coefs_[0]
            first_bias[units] = network.intercepts_[0] - shift
            second[units, j] = network.coefs_[1].ravel() * output_scale[j]
            bias[j] = float(network.intercepts_[1][0]) * output_scale[j]
        arrays = {
            "vector_words": np.frombuffer("\n".join(self.vectors.words).encode(), np.uint8),
            "vector_rows": self.vectors.rows,
            "vector_table": self.vectors.table,
            "vector_hidden_weights": first,
            "vector_hidden_bias": first_bias,
            "vector_output_weights": second,
        }
        return arrays, bias


def _fit_network(
    inputs: np.ndarray, y: np.ndarray, weights: np.ndarray, hp: Hyperparameters
) -> MLPClassifier | None:
    known = ~np.isnan(y)
    if len(np.unique(y[known])) < 2:
        return None
    network = MLPClassifier(
        hidden_layer_sizes=(hp.vector_hidden,),
        alpha=hp.vector_alpha,
        batch_size=256,
        max_iter=60,
        early_stopping=True,
        n_iter_no_change=5,
        random_state=0,
    )
    network.fit(inputs[known], y[known].astype(np.int8), sample_weight=weights[known])
    return network


class ToxicityPipeline:
    """Training-time model; ``predict_proba`` is the scikit-learn reference for parity."""

    def __init__(self, hp: Hyperparameters) -> None:
        self.hp = hp
        self.word_vectorizer = TfidfVectorizer(
            lowercase=False,
            token_pattern=WORD_PATTERN,
            ngram_range=hp.word_ngram_range,
            max_features=hp.word_max_features,
            min_df=hp.word_min_df,
            sublinear_tf=True,
            dtype=np.float64,
        )
        self.char_vectorizer = TfidfVectorizer(
            lowercase=False,
            analyzer="char",
            ngram_range=hp.char_ngram_range,
            max_features=hp.char_max_features,
            min_df=hp.char_min_df,
            sublinear_tf=True,
            dtype=np.float64,
        )
        self.ratios: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.intercepts = np.zeros(len(LABELS))
        self.calibration = np.tile([1.0, 0.0], (len(LABELS), 1))
        self.uncalibrated: list[str] = []
        # the stacked model and the weight of its logit in each label's sum (0: not used)
        self.vector_model: WordVectorModel | None = None
        self.blend = np.zeros(len(LABELS))

    def fit_vectorizers(self, normalized_texts: list[str]) -> sparse.csr_matrix:
        words = self.word_vectorizer.fit_transform(normalized_texts)
        chars = self.char_vectorizer.fit_transform(normalized_texts)
        return sparse.hstack([words, chars], format="csr")

    def transform(self, normalized_texts: list[str]) -> sparse.csr_matrix:
        words = self.word_vectorizer.transform(normalized_texts)
        chars = self.char_vectorizer.transform(normalized_texts)
        return sparse.hstack([words, chars], format="csr")

    def fit_classifiers(
        self,
        features: sparse.csr_matrix,
        targets: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> None:
        """One classifier per label on the rows where it is known (NaN targets are masked),
        ``weights`` per row (default 1); liblinear releases the GIL, so threads use both
        cores."""
        targets = targets.astype(np.float64)
        weights = np.ones(len(targets)) if weights is None else np.asarray(weights, np.float64)
        fitted = Parallel(n_jobs=-1, prefer="threads")(
            delayed(_fit_label)(features, targets[:, j], weights, self.hp)
            for j in range(len(LABELS))
        )
        self.ratios = [ratio for ratio, _, _ in fitted]
        self.weights = [weights for _, weights, _ in fitted]
        self.intercepts = np.array([intercept for _, _, intercept in fitted])

    def vector_features(self, normalized_texts: list[str]) -> np.ndarray | None:
        if self.vector_model is None:
            return None
        return self.vector_model.features(normalized_texts)

    def decision_function(
        self, features: sparse.csr_matrix, vector_features: np.ndarray | None = None
    ) -> np.ndarray:
        """Uncalibrated logits: the n-gram model's, plus ``blend`` times the stacked model's
        when it is fitted (``vector_features`` then required)."""
        columns = [
            (features @ (self.ratios[j] * self.weights[j])) + self.intercepts[j]
            for j in range(len(LABELS))
        ]
        logits = np.column_stack(columns)
        if self.vector_model is not None:
            if vector_features is None:
                raise ValueError("the stacked model needs the comments' vector features")
            logits = logits + self.blend * self.vector_model.logits(vector_features)
        return logits

    def calibrate(self, logits: np.ndarray, targets: np.ndarray) -> None:
        """Platt scaling per label on real-rate rows, so probabilities match live traffic.

        A label with fewer than 3 positives there (small samples) keeps its raw probabilities
        and is listed in ``uncalibrated``."""
        self.uncalibrated = []
        self.calibration = np.tile([1.0, 0.0], (len(LABELS), 1))
        for j, label in enumerate(LABELS):
            positives = int(targets[:, j].sum())
            if positives < 3 or positives == len(targets):
                self.uncalibrated.append(label)
                continue
            platt = LogisticRegression(C=1e4, solver="lbfgs")
            platt.fit(logits[:, [j]], targets[:, j])
            self.calibration[j] = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))

    def predict_proba_features(
        self, features: sparse.csr_matrix, vector_features: np.ndarray | None = None
    ) -> np.ndarray:
        logits = self.decision_function(features, vector_features)
        return _sigmoid(logits * self.calibration[:, 0] + self.calibration[:, 1])

    def predict_proba(self, normalized_texts: list[str]) -> np.ndarray:
        return self.predict_proba_features(
            self.transform(normalized_texts), self.vector_features(normalized_texts)
        )

    def export_arrays(self) -> tuple[dict[str, np.ndarray], list[str], list[str], int]:
        """Folded arrays for the lean scorer, the two vocabularies and the char table bits."""
        words = [str(term) for term in self.word_vectorizer.get_feature_names_out()]
        chars = [str(term) for term in self.char_vectorizer.get_feature_names_out()]
        scale, shift = self.calibration[:, 0], self.calibration[:, 1]
        coef = np.column_stack(
            [scale[j] * self.ratios[j] * self.weights[j] for j in range(len(LABELS))]
        )
        keys = np.array(
            [char_ngram_keys(term, len(term), len(term))[0] for term in chars], dtype=np.uint64
        )
        table_keys, table_values, bits = build_key_table(keys)
        intercept = scale * self.intercepts + shift
        arrays = {
            "idf": np.concatenate([self.word_vectorizer.idf_, self.char_vectorizer.idf_]),
            "coef": coef.astype(np.float32),
            "char_table_keys": table_keys,
            "char_table_values": table_values,
        }
        if self.vector_model is not None:
            vector_arrays, vector_bias = self.vector_model.export_arrays(scale * self.blend)
            arrays |= vector_arrays
            intercept = intercept + vector_bias
        arrays["intercept"] = intercept
        return arrays, words, chars, bits
