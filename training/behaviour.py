"""The behavioural suite and the identity-bias metrics, scored against a bundle, and the
recorded floors they must stay above.

Pure functions over a scorer and the committed suites in ``training/suites/``;
``bench/behaviour.py`` (``make eval``) runs them on the full model and the model-layer tests
run them on the sample-trained one, against separate floors.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from moderation.labels import LABELS
from moderation.model.language_id import detect_language
from moderation.model.policy import Judgement, judge
from moderation.model.scorer import Scorer
from moderation.settings import Settings
from moderation.text import normalize_text

SUITES_DIR = Path(__file__).resolve().parent / "suites"
BEHAVIOUR_FILE = SUITES_DIR / "behaviour.csv"
BIAS_FILE = SUITES_DIR / "identity_bias.csv"
FLOORS_FILE = SUITES_DIR / "floors.json"
BIAS_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")

#: The comments of issue 13's table and what a community expects of each.
ISSUE_COMMENTS: tuple[tuple[str, str], ...] = (
    ("I am a proud gay muslim woman and I love my community", "allow"),
    ("You are a wonderful person", "allow"),
    ("I don't think you are an idiot at all", "not_block"),
    ("Saying 'all gays are disgusting' is hateful and wrong", "not_block"),
    ("We should burn down their mosque with them inside", "flag"),
    ("Immigrants are parasites who should be thrown out", "flag"),
    ("Disabled people are a burden on all of us", "flag"),
)

Decider = Callable[[str], Judgement]


def read_suite(path: Path = BEHAVIOUR_FILE) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def read_bias_set(path: Path = BIAS_FILE) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"id": str, "identity": str, "text": str})
    frame["toxic"] = frame["toxic"].astype(int)
    return frame


def decision_passes(expected: str, decision: str) -> bool:
    """Whether a decision meets a suite row's ``expected_decision``."""
    if expected == "flag":
        return decision in ("review", "block")
    if expected == "not_block":
        return decision in ("allow", "review")
    return decision == expected  # "allow" or "block"


def labels_pass(expected_labels: str, expected: str, flagged: list[str], decision: str) -> bool:
    """Whether the flagged labels include every expected one. On ``not_block`` rows (strong
    profanity aimed at no one expects ``obscene``) the labels count only once the comment is
    flagged at all."""
    wanted = [label for label in expected_labels.split(";") if label]
    if expected == "not_block" and decision == "allow":
        return True
    return set(wanted) <= set(flagged)


def scorer_decider(scorer: Scorer, fail_safe: bool = True) -> Decider:
    """The decision for a raw comment: ``judge`` as the API serves it with the default
    settings (fail-safe rules, language routing to review), or the plain threshold rule of
    ``Scorer.decide`` (``fail_safe=False``)."""
    unsupported = Settings.model_fields["unsupported_language_decision"].default

    def decide(text: str) -> Judgement:
        normalized = normalize_text(text)
        scores = scorer.score_normalized(normalized)
        if fail_safe:
            language = detect_language(text)
            return judge(scorer, normalized, scores, unsupported=unsupported, language=language)
        labels, decision = scorer.decide(scores)
        return Judgement(labels, decision)  # type: ignore[arg-type]

    return decide


def evaluate_suite(suite: pd.DataFrame, decide: Decider) -> dict[str, Any]:
    """Per functionality: cases, decision accuracy, label accuracy (rows that expect labels),
    and the ids of the failing cases; plus the overall figures."""
    rows = []
    for case in suite.itertuples(index=False):
        judgement = decide(case.text)
        has_labels = bool(case.expected_labels)
        rows.append(
            {
                "id": case.id,
                "functionality": case.functionality,
                "decision_ok": decision_passes(case.expected_decision, judgement.decision),
                "labels_ok": labels_pass(
                    case.expected_labels,
                    case.expected_decision,
                    judgement.labels,
                    judgement.decision,
                )
                if has_labels
                else None,
            }
        )
    frame = pd.DataFrame(rows)
    functionalities: dict[str, dict[str, Any]] = {}
    for name, group in frame.groupby("functionality", sort=False):
        checked = group["labels_ok"].dropna()
        functionalities[str(name)] = {
            "cases": len(group),
            "decision_accuracy": round(float(group["decision_ok"].mean()), 4),
            "label_accuracy": round(float(checked.astype(bool).mean()), 4)
            if len(checked)
            else None,
            "failing": group.loc[~group["decision_ok"], "id"].tolist(),
        }
    checked = frame["labels_ok"].dropna()
    return {
        "cases": len(frame),
        "decision_accuracy": round(float(frame["decision_ok"].mean()), 4),
        "macro_decision_accuracy": round(
            float(np.mean([f["decision_accuracy"] for f in functionalities.values()])), 4
        ),
        "label_accuracy": round(float(checked.astype(bool).mean()), 4),
        "functionalities": functionalities,
    }


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    return float(roc_auc_score(y, np.concatenate([positive, negative])))


def bias_metrics(identity: np.ndarray, toxic: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The Jigsaw Unintended-Bias AUCs per identity on one score: subgroup AUC (the identity's
    rows only), BPSN (its non-toxic rows against the other identities' toxic rows) and BNSP
    (its toxic rows against the others' non-toxic rows); plus the overall AUC and each
    metric's minimum over identities."""
    per_identity: dict[str, dict[str, float]] = {}
    for term in sorted(set(identity.tolist())):
        mine, others = identity == term, identity != term
        pos, neg = toxic == 1, toxic == 0
        per_identity[term] = {
            "subgroup_auc": round(_auc(scores[mine & pos], scores[mine & neg]), 4),
            "bpsn_auc": round(_auc(scores[others & pos], scores[mine & neg]), 4),
            "bnsp_auc": round(_auc(scores[mine & pos], scores[others & neg]), 4),
        }
    return {
        "overall_auc": round(_auc(scores[toxic == 1], scores[toxic == 0]), 4),
        "minimum": {m: min(v[m] for v in per_identity.values()) for m in BIAS_METRICS},
        "mean": {
            m: round(float(np.mean([v[m] for v in per_identity.values()])), 4) for m in BIAS_METRICS
        },
        "per_identity": per_identity,
    }


def evaluate_bias(bias_set: pd.DataFrame, scorer: Scorer, label: str = "toxic") -> dict[str, Any]:
    scores = scorer.score_many(bias_set["text"].tolist())[:, LABELS.index(label)]
    report = bias_metrics(bias_set["identity"].to_numpy(), bias_set["toxic"].to_numpy(), scores)
    return {"score": label, "rows": len(bias_set), **report}


def issue_comments(scorer: Scorer) -> list[dict[str, Any]]:
    """Issue 13's comments: the fail-safe decision (with reasons) and the threshold rule's."""
    out = []
    fail_safe, threshold_rule = scorer_decider(scorer), scorer_decider(scorer, fail_safe=False)
    for text, expected in ISSUE_COMMENTS:
        judgement = fail_safe(text)
        scores = scorer.score(text)
        out.append(
            {
                "text": text,
                "expected": expected,
                "decision": judgement.decision,
                "threshold_rule_decision": threshold_rule(text).decision,
                "passes": decision_passes(expected, judgement.decision),
                "labels": judgement.labels,
                "reasons": judgement.reasons,
                "scores": {k: round(float(v), 3) for k, v in zip(LABELS, scores, strict=True)},
            }
        )
    return out


@dataclass(frozen=True)
class FloorFailure:
    what: str
    value: float
    floor: float

    def __str__(self) -> str:
        return f"{self.what}: {self.value:.4f} < floor {self.floor:.4f}"


def read_floors(model: str, path: Path = FLOORS_FILE) -> dict[str, Any]:
    """The floors recorded for ``model`` ("full": the full-data model, "sample": the model
    the tests train on the committed sample)."""
    return json.loads(path.read_text())[model]


def record_floors(model: str, floors: dict[str, Any], path: Path = FLOORS_FILE) -> None:
    """Replace the floor set of ``model`` in the floors file, keeping the other."""
    recorded = json.loads(path.read_text())
    recorded[model] = floors
    path.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")


def check_floors(
    suite_report: dict[str, Any], bias_report: dict[str, Any], floors: dict[str, Any]
) -> list[FloorFailure]:
    """Every functionality's decision accuracy and every bias metric's minimum over
    identities that falls below its floor (a functionality without a floor is a failure
    too: the floors must cover the whole suite)."""
    failures = []
    behaviour = floors["behaviour"]
    for name, result in suite_report["functionalities"].items():
        floor = behaviour.get(name, 1.0)
        if result["decision_accuracy"] < floor:
            failures.append(FloorFailure(f"behaviour {name}", result["decision_accuracy"], floor))
    for metric, floor in floors["bias"].items():
        value = bias_report["minimum"][metric]
        if value < floor:
            failures.append(FloorFailure(f"bias minimum {metric}", value, floor))
    return failures


def floors_below(
    suite_report: dict[str, Any], bias_report: dict[str, Any], margin: float
) -> dict[str, Any]:
    """Floors ``margin`` below measured figures, rounded down to 0.01 (for recording)."""

    def below(value: float) -> float:
        return max(0.0, float(np.floor((value - margin) * 100) / 100))

    return {
        "behaviour": {
            name: below(result["decision_accuracy"])
            for name, result in suite_report["functionalities"].items()
        },
        "bias": {m: below(bias_report["minimum"][m]) for m in BIAS_METRICS},
    }
