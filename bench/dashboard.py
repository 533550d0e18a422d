"""Dashboard benchmark (``python -m bench.dashboard``) -> bench/results/dashboard.json.

Time to draw the dashboard's main page for the last 24 hours (per hour, the default: minute
buckets only up to 6 h), all versions, after 10,000 and after 200,000 logged predictions: the
page script itself, run by Streamlit's ``AppTest`` (every read, frame, figure and element,
caches cleared each run), and separately the reads alone (``load_dashboard``). moto runs
in-process (``mock_aws``) with the local stack's patches (``local.moto_server.patch_moto``).

Each table holds what the aggregator would have left after that many predictions spread
over the last 23.5 hours: every minute, hour and lifetime bucket with the summed counters of
``prediction_counters`` (every counter present, zeros included, as the handler creates them),
one copy of each bucket per stream shard (``SHARDS`` of them, as the aggregator writes
them; reads sum the copies), each shard's high-water mark (written with BatchWriteItem), and
the model record with its reference. Pushing 200,000 records through
the handler would take long and leave the same items.
"""

import os
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.aggregator import synthetic_record
from bench.common import write_results

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SIZES = (10_000, 200_000)
REPEATS = 3
#: stream shards the predictions table's stream has at this rate (each writes its buckets)
SHARDS = 4
SPREAD_S = 84_600


def feedback_for(rng: np.random.Generator, records: list, share: float = 0.05) -> list:
    """Feedback on ``share`` of the predictions, 90% saying the model was right; moderator
    decisions on the ones sent to review, the rest from the API's callers."""
    from moderation.records import FeedbackRecord

    feedback = []
    for record in records:
        if rng.random() >= share:
            continue
        correct = bool(rng.random() < 0.9)
        predicted = record.labels
        truth = predicted if correct else (predicted[1:] if predicted else ["toxic"])
        feedback.append(
            FeedbackRecord(
                request_id=record.request_id,
                source="moderator" if record.decision == "review" else "api",
                correct=correct, true_labels=truth, predicted_labels=predicted,
                predicted_decision=record.decision, model_version=record.model_version,
                created_at=record.created_at, fingerprint=record.request_id,
            )
        )  # fmt: skip
    return feedback


def fill(client, table: str, records: list, feedback: list) -> int:
    """Buckets (minute, hour, lifetime; version and ALL), markers and the model record."""
    from moderation.buckets import (
        all_counters,
        bucket_keys,
        feedback_counters,
        high_water_key,
        prediction_counters,
        score_histogram,
        shard_key,
    )
    from moderation.labels import LABELS
    from moderation.records import PredictionRecord
    from moderation.stores.aggregates import AggregateStore, ModelRecord
    from moderation.stores.dynamo import serialize

    sums: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for record in [*records, *feedback]:
        moment = datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
        counters = (
            prediction_counters(record)
            if isinstance(record, PredictionRecord)
            else feedback_counters(record)
        )
        shard = f"shardId-{int(record.request_id.rsplit('-', 1)[-1]) % SHARDS}"
        for pk, bucket in bucket_keys(moment, record.model_version):
            sums[(pk, shard_key(bucket, shard))].update(counters)
    zeros = dict.fromkeys(all_counters(), 0)
    requests = [
        {"PutRequest": {"Item": serialize({"pk": pk, "sk": sk, **zeros, **counts})}}
        for (pk, sk), counts in sums.items()
    ]
    requests += [
        {"PutRequest": {"Item": serialize({**high_water_key(f"shardId-{n}"), "last_sequence": 1})}}
        for n in range(SHARDS)
    ]
    for offset in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={table: requests[offset : offset + 25]})
    rng = np.random.default_rng(11)
    reference = {label: score_histogram(rng.beta(0.3, 6, 5000)) for label in LABELS}
    AggregateStore(table, client).put_model(
        ModelRecord(
            version="v1",
            model_name="tfidf-nblr",
            reference_status="recorded",
            reference_positive_rate=dict.fromkeys(LABELS, 0.05),
            reference_score_histograms=reference,
            histogram_bins=[i / 20 for i in range(21)],
            first_seen=datetime.now(UTC) - timedelta(days=2),
        )
    )
    return len(requests)


def draw_page(table: str) -> float:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["AGGREGATES_TABLE"] = table
    from moderation.settings import get_settings

    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    start = time.perf_counter()
    app = AppTest.from_file(str(APP), default_timeout=600).run()
    elapsed = time.perf_counter() - start
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == 8, "every chart drawn"
    return elapsed


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    import boto3
    from moto import mock_aws

    from dashboard.queries import TimeRange, load_dashboard
    from dashboard.settings import DashboardSettings
    from local.moto_server import patch_moto
    from local.resources import create_resources
    from moderation.settings import Settings
    from moderation.stores.aggregates import AggregateStore

    patch_moto()
    minute_max = timedelta(hours=DashboardSettings().minute_resolution_max_hours)
    results: dict = {
        "moto": "in-process (mock_aws), with the local stack's patches",
        "page": "last 24 h, hour resolution (the default), all versions; AppTest run of "
        "dashboard/app.py",
    }
    with mock_aws():
        client = boto3.client("dynamodb")
        rng = np.random.default_rng(3)
        now = datetime.now(UTC)
        for total in SIZES:
            table = f"bench-dashboard-{total}"
            create_resources(Settings(aggregates_table=table), client, boto3.client("s3"))
            # the last 23.5 hours: still inside the page's 24 h window when the page is drawn
            # minutes later (the window moves with the clock)
            seconds = rng.integers(0, SPREAD_S, total)
            items = [synthetic_record(rng, now - timedelta(seconds=int(s)), i)
                     for i, s in enumerate(seconds)]  # fmt: skip
            feedback = feedback_for(rng, items)
            started = time.perf_counter()
            written = fill(client, table, items, feedback)
            fill_s = time.perf_counter() - started
            store = AggregateStore(table, client)
            span = TimeRange.last(timedelta(hours=24), datetime.now(UTC))
            started = time.perf_counter()
            data = load_dashboard(store, "ALL", span, minute_max)
            reads = [time.perf_counter() - started]
            assert data.resolution == "hour" and data.totals["requests"] == total
            pages = [draw_page(table) for _ in range(REPEATS)]
            results[str(total)] = {
                "predictions": total,
                "feedback": len(feedback),
                "items_in_table": client.describe_table(TableName=table)["Table"]["ItemCount"],
                "items_written": written,
                "fill_s": round(fill_s, 1),
                "hour_buckets_drawn": len(data.series),
                "reads_s": round(reads[0], 3),
                "page_s_median": round(statistics.median(pages), 3),
                "page_s_runs": [round(p, 3) for p in pages],
            }
            print(f"{total:>7} predictions: page {statistics.median(pages):.2f} s "
                  f"(reads {reads[0]:.2f} s)", flush=True)  # fmt: skip
    ratio = results["200000"]["page_s_median"] / results["10000"]["page_s_median"]
    results["ratio_200k_over_10k"] = round(ratio, 2)
    results["target_ratio_at_most"] = 1.5
    write_results("dashboard", results)


if __name__ == "__main__":
    main()
