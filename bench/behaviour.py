"""Behavioural suite, identity bias and issue 13's comments (``make eval``) ->
bench/results/behaviour.json.

Scores a bundle (the latest in ``artifacts/bundles``, or ``--bundle``) on
``training/suites/behaviour.csv`` and ``identity_bias.csv``, prints a table per
functionality, and exits 1 when a figure falls below the floors recorded for the model in
``training/suites/floors.json`` (``--floors full``, the default, or ``sample``).
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.common import write_results
from moderation.model.bundle import load_bundle
from moderation.settings import get_settings
from training import behaviour


def latest_bundle() -> Path:
    bundles = get_settings().artifacts_dir / "bundles"
    return bundles / (bundles / "LATEST").read_text().strip()


def table(fail_safe: dict[str, Any], threshold_rule: dict[str, Any]) -> str:
    lines = [f"{'functionality':<24}{'cases':>6}{'decision':>10}{'labels':>8}{'rule only':>11}"]
    for name, result in fail_safe["functionalities"].items():
        labels = result["label_accuracy"]
        plain = threshold_rule["functionalities"][name]["decision_accuracy"]
        lines.append(
            f"{name:<24}{result['cases']:>6}{result['decision_accuracy']:>10.3f}"
            f"{'' if labels is None else f'{labels:.3f}':>8}{plain:>11.3f}"
        )
    lines.append(
        f"{'all':<24}{fail_safe['cases']:>6}{fail_safe['decision_accuracy']:>10.3f}"
        f"{fail_safe['label_accuracy']:>8.3f}{threshold_rule['decision_accuracy']:>11.3f}"
    )
    return "\n".join(lines)


#: How far below today's figures each floor set is recorded: the full model's, and the
#: smaller sample model's (which moves more between changes).
RECORD_MARGINS = {"full": 0.05, "sample": 0.10}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: the latest)")
    parser.add_argument("--floors", default="full", choices=("full", "sample", "none"))
    parser.add_argument("--output", default="behaviour", help="results name in bench/results")
    parser.add_argument(
        "--record",
        choices=tuple(RECORD_MARGINS),
        help="write this floor set from the figures measured now (after a deliberate change)",
    )
    args = parser.parse_args(argv)
    bundle_dir = args.bundle or latest_bundle()
    scorer = load_bundle(bundle_dir)
    suite = behaviour.read_suite()
    fail_safe = behaviour.evaluate_suite(suite, behaviour.scorer_decider(scorer))
    threshold_rule = behaviour.evaluate_suite(
        suite, behaviour.scorer_decider(scorer, fail_safe=False)
    )
    bias = behaviour.evaluate_bias(behaviour.read_bias_set(), scorer)
    comments = behaviour.issue_comments(scorer)
    if args.record:
        behaviour.record_floors(
            args.record, behaviour.floors_below(fail_safe, bias, RECORD_MARGINS[args.record])
        )
    failures = (
        []
        if args.floors == "none"
        else behaviour.check_floors(fail_safe, bias, behaviour.read_floors(args.floors))
    )
    metrics = scorer.metadata.metrics
    write_results(
        args.output,
        {
            "bundle": bundle_dir.name,
            "model_name": scorer.model_name,
            "validation_mean_roc_auc": metrics.get("validation", {}).get("mean_roc_auc"),
            "test_mean_roc_auc": metrics.get("test", {}).get("mean_roc_auc"),
            "thresholds": scorer.metadata.thresholds,
            "block_thresholds": scorer.metadata.block_thresholds,
            "behaviour": fail_safe,
            "behaviour_threshold_rule_only": threshold_rule,
            "bias": bias,
            "issue_comments": comments,
            "floors": args.floors,
            "floor_failures": [str(f) for f in failures],
        },
    )
    print(table(fail_safe, threshold_rule))
    print("bias (toxic score), minimum over identities:", bias["minimum"], "mean:", bias["mean"])
    for comment in comments:
        print(
            f"{comment['decision']:>7} (rule only {comment['threshold_rule_decision']}, "
            f"expected {comment['expected']}): {comment['text']}"
        )
    for failure in failures:
        print(f"BELOW FLOOR {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
