"""The W&B run summary takes every report training writes, the extra sources' too."""

import numpy as np

from moderation.labels import LABELS
from training import evaluate


def test_the_extra_sources_masked_report_flattens_into_the_run_summary():
    # GIVEN a masked report over two sources, "toxic" unknown on one of them
    targets = np.tile([[1.0] * len(LABELS), [0.0] * len(LABELS)], (4, 1))
    targets[4:, 0] = np.nan
    probabilities = np.where(np.isnan(targets), 0.5, targets * 0.8 + 0.1)
    sources = np.array(["civil"] * 4 + ["stormfront"] * 4)
    report = evaluate.masked_metrics(targets, probabilities, sources)
    # WHEN it is flattened for the summary
    flat = evaluate.flat_metrics("validation_extra", report)
    # THEN each source's known labels and the pooled figures are there, the unknown one not
    assert flat["validation_extra/civil/toxic/roc_auc"] == 1.0
    assert "validation_extra/stormfront/toxic/roc_auc" not in flat
    assert flat["validation_extra/stormfront/insult/roc_auc"] == 1.0
    assert flat["validation_extra/mean_pooled_roc_auc"] == 1.0
