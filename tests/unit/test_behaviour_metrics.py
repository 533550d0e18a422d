"""The behavioural-suite checks, the bias AUCs and the floors, on hand-made inputs."""

import numpy as np
import pandas as pd
import pytest

from moderation.model.policy import Judgement
from training import behaviour


@pytest.mark.parametrize(
    ("expected", "decision", "passes"),
    [
        ("flag", "review", True),
        ("flag", "block", True),
        ("flag", "allow", False),
        ("not_block", "review", True),
        ("not_block", "block", False),
        ("allow", "review", False),
        ("block", "review", False),
        ("block", "block", True),
    ],
)
def test_expected_decisions(expected, decision, passes):
    assert behaviour.decision_passes(expected, decision) is passes


def test_labels_are_a_subset_check_and_count_on_not_block_rows_only_once_flagged():
    assert behaviour.labels_pass("toxic;insult", "flag", ["toxic", "insult", "obscene"], "block")
    assert not behaviour.labels_pass("toxic;insult", "flag", ["toxic"], "review")
    assert behaviour.labels_pass("obscene", "not_block", [], "allow")
    assert not behaviour.labels_pass("obscene", "not_block", ["toxic"], "review")


def test_suite_report_per_functionality():
    suite = pd.DataFrame(
        {
            "id": ["a_1", "a_2", "b_1"],
            "functionality": ["a", "a", "b"],
            "text": ["bad", "fine", "fine"],
            "expected_decision": ["flag", "flag", "allow"],
            "expected_labels": ["toxic", "toxic", ""],
        }
    )

    def decide(text: str) -> Judgement:
        return Judgement(["toxic"], "review") if text == "bad" else Judgement([], "allow")

    report = behaviour.evaluate_suite(suite, decide)
    assert report["functionalities"]["a"] == {
        "cases": 2,
        "decision_accuracy": 0.5,
        "label_accuracy": 0.5,
        "failing": ["a_2"],
    }
    assert report["functionalities"]["b"]["label_accuracy"] is None
    assert report["decision_accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def test_bias_metrics_separate_an_identity_that_raises_the_score():
    # "x" rows score higher than "y" rows at equal toxicity
    identity = np.array(["x", "x", "x", "x", "y", "y", "y", "y"])
    toxic = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    scores = np.array([0.5, 0.6, 0.9, 1.0, 0.1, 0.2, 0.55, 0.65])
    report = behaviour.bias_metrics(identity, toxic, scores)
    x, y = report["per_identity"]["x"], report["per_identity"]["y"]
    assert x["subgroup_auc"] == y["subgroup_auc"] == 1.0
    assert x["bpsn_auc"] < 1.0 and y["bnsp_auc"] < 1.0  # x's non-toxic look like y's toxic
    assert x["bnsp_auc"] == y["bpsn_auc"] == 1.0
    assert report["minimum"]["bpsn_auc"] == x["bpsn_auc"]


def test_floors_flag_every_figure_below_and_every_functionality_without_one():
    suite_report = {
        "functionalities": {"a": {"decision_accuracy": 0.8}, "b": {"decision_accuracy": 0.5}}
    }
    bias_report = {"minimum": {"subgroup_auc": 0.9, "bpsn_auc": 0.6, "bnsp_auc": 0.9}}
    floors = {
        "behaviour": {"a": 0.7},
        "bias": {"subgroup_auc": 0.8, "bpsn_auc": 0.7, "bnsp_auc": 0.8},
    }
    failures = behaviour.check_floors(suite_report, bias_report, floors)
    assert [f.what for f in failures] == ["behaviour b", "bias minimum bpsn_auc"]
    recorded = behaviour.floors_below(suite_report, bias_report, margin=0.05)
    assert recorded["behaviour"] == {"a": 0.75, "b": 0.45}
    assert behaviour.check_floors(suite_report, bias_report, recorded) == []
