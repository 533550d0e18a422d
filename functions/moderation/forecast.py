"""What a policy change would do, before it is saved: sampled traffic replayed under both.

Each sampled prediction is decided again under the current policy and under the candidate
with the same scores (the ones logged), so a difference comes from the policy alone. Where
the candidate's allow terms change the text the model sees, that text is scored again by
the served model. Terms need the comment's text: predictions logged without it are decided
by the thresholds alone and counted in ``without_text``.

Quality uses the moderators' decisions on sampled items: a comment is truly flagged when a
moderator gave it labels (rejected or relabelled it). A policy "flags" a comment when it
does not allow it; precision and recall are of that flag.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moderation.labels import DECISIONS, LABELS
from moderation.model.scorer import Scorer
from moderation.policies import AppliedPolicy
from moderation.records import SampledPrediction
from moderation.text import normalize_text


@dataclass
class Outcome:
    decisions: Counter[str] = field(default_factory=Counter)
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, decision: str, truly_flagged: bool | None) -> None:
        self.decisions[decision] += 1
        if truly_flagged is None:
            return
        flagged = decision != "allow"
        self.tp += flagged and truly_flagged
        self.fp += flagged and not truly_flagged
        self.fn += (not flagged) and truly_flagged

    def summary(self, scale_per_day: float) -> dict[str, Any]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else None
        return {
            **{decision: self.decisions[decision] for decision in DECISIONS},
            "review_inflow_per_day": round(self.decisions["review"] * scale_per_day, 1),
            "precision": None if precision is None else round(precision, 4),
            "recall": None if recall is None else round(recall, 4),
        }


def _decide(
    policy: AppliedPolicy, scorer: Scorer, normalized: str | None, scores: np.ndarray
) -> str:
    if normalized is None:
        return policy.judge(scorer, "", scores, []).decision
    matches, model_text = policy.prepare(normalized)
    if model_text is not normalized:
        scores = scorer.score_normalized(model_text)
    return policy.judge(scorer, model_text, scores, matches).decision


def forecast(
    items: list[SampledPrediction],
    current: AppliedPolicy,
    candidate: AppliedPolicy,
    scorer: Scorer,
    days: int,
    sample_rate: float,
    requests: int | None = None,
) -> dict[str, Any]:
    """Decision counts, review inflow per day and precision/recall under both policies.
    ``requests`` (the aggregates' count over the same days) scales the sample to the whole
    traffic; without it, each item stands for ``1 / sample_rate`` predictions."""
    before, after = Outcome(), Outcome()
    changed: Counter[str] = Counter()
    without_text = labelled = 0
    for item in items:
        scores = np.array([item.scores[label] for label in LABELS])
        normalized = normalize_text(item.comment_text) if item.comment_text else None
        without_text += normalized is None
        truth = bool(item.review.true_labels) if item.review is not None else None
        labelled += truth is not None
        was = _decide(current, scorer, normalized, scores)
        will = _decide(candidate, scorer, normalized, scores)
        before.add(was, truth)
        after.add(will, truth)
        if was != will:
            changed[f"{was}->{will}"] += 1
    if requests is not None and items:
        scale = requests / len(items) / days
    else:
        scale = 1.0 / (sample_rate * days) if sample_rate > 0 else 0.0
    return {
        "sample": {
            "items": len(items),
            "days": days,
            "sample_rate": sample_rate,
            "without_text": without_text,
            "labelled_by_moderators": labelled,
            "requests_in_window": requests,
        },
        "current": before.summary(scale),
        "candidate": after.summary(scale),
        "changed": dict(changed),
    }
