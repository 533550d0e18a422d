"""Aggregator benchmark (``make bench-aggregator``) -> bench/results/aggregator.json.

Against its own moto server (a subprocess on loopback): records per second through the
aggregator handler; the aggregate-table reads needed to draw 24 hours at minute resolution;
and the time to load those 24 hours after 10,000 and after 200,000 logged predictions.

For the 10k / 200k read test the buckets are filled with the same per-bucket counter sums the
handler would produce (``prediction_counters`` summed per minute and hour), written directly:
pushing 200,000 records through the handler takes longer than a benchmark should, and the
read cost depends only on the resulting bucket items, which are identical.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import stop_process, write_results
from local.lambda_context import LambdaContext
from local.processes import free_port

LABEL_RATES = (0.095, 0.01, 0.053, 0.003, 0.049, 0.009)


def synthetic_record(rng: np.random.Generator, moment: datetime, index: int):
    """A logged prediction with real-rate labels and plausible scores and latency."""
    from moderation.labels import LABELS
    from moderation.records import PredictionRecord

    scores = {label: float(rng.beta(0.3, 6)) for label in LABELS}
    labels = [label for label, rate in zip(LABELS, LABEL_RATES, strict=True) if rng.random() < rate]
    decision = "block" if len(labels) > 1 else ("review" if labels else "allow")
    return PredictionRecord(
        request_id=f"bench-{index}", input_hash=f"{index:064x}", scores=scores, labels=labels,
        decision=decision, model_name="tfidf-nblr", model_version="v1",
        latency_ms=float(rng.lognormal(1.0, 0.6)), cached=bool(rng.random() < 0.2),
        created_at=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        caller_id="bench", expires_at=int(moment.timestamp()) + 30 * 86_400,
        review_status="pending" if decision == "review" else None, fingerprint=f"bench-{index}",
    )  # fmt: skip


def synthetic_item(rng: np.random.Generator, moment: datetime, index: int) -> dict:
    """``synthetic_record`` as the DynamoDB item the API would have written."""
    return synthetic_record(rng, moment, index).item()


def stream_event(items: list[dict]) -> dict:
    from moderation.stores.dynamo import serialize

    return {
        "Records": [
            {
                "eventID": f"{i:032d}", "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/p/stream/x",
                "dynamodb": {"Keys": serialize({"pk": it["pk"], "sk": it["sk"]}),
                             "NewImage": serialize(it), "SequenceNumber": str(1000 + i),
                             "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }
            for i, it in enumerate(items)
        ]
    }  # fmt: skip


def bulk_fill(client, table: str, items: list[dict]) -> None:
    """Write the summed counters per bucket: the end state the handler would reach."""
    from moderation.buckets import all_counters, bucket_keys, prediction_counters
    from moderation.records import PredictionRecord
    from moderation.stores.dynamo import serialize

    sums: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for item in items:
        record = PredictionRecord.model_validate(item)
        moment = datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
        for key in bucket_keys(moment, record.model_version):
            sums[key].update(prediction_counters(record))

    for (pk, sk), counts in sums.items():
        # the same fixed shape as the handler's buckets: every counter, zeros included
        item = {"pk": pk, "sk": sk, **dict.fromkeys(all_counters(), 0), **counts}
        client.put_item(TableName=table, Item=serialize(item))


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-agg-"))
    port = free_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    )  # fmt: skip
    moto = subprocess.Popen(
        [sys.executable, "-m", "local", "moto", "--port", str(port),
         "--state-dir", str(scratch)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import boto3

        from aggregator.handler import handler
        from local.moto_server import wait_for_moto
        from local.resources import create_resources
        from moderation.settings import Settings, get_settings
        from moderation.stores.aggregates import AggregateStore

        wait_for_moto(scratch)
        rng = np.random.default_rng(3)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        results: dict = {"moto": "server mode on loopback (separate process)"}

        # 1. handler throughput, real records, batches of 100
        settings = get_settings()
        create_resources(settings)
        items = [synthetic_item(rng, now - timedelta(seconds=int(s)), i)
                 for i, s in enumerate(rng.integers(0, 3600, 2000))]  # fmt: skip
        start = time.perf_counter()
        for offset in range(0, len(items), 100):
            response = handler(stream_event(items[offset : offset + 100]), LambdaContext())
            assert not response["batchItemFailures"]
        elapsed = time.perf_counter() - start
        results["handler"] = {
            "records": len(items), "seconds": round(elapsed, 2),
            "records_per_s": round(len(items) / elapsed, 1), "batch_size": 100,
        }  # fmt: skip

        # 2. reading 24 hours at minute resolution after 10k and 200k predictions
        reads = {}
        for total in (10_000, 200_000):
            table = f"bench-aggregates-{total}"
            create_resources(Settings(aggregates_table=table))
            spread = [synthetic_item(rng, now - timedelta(seconds=int(s)), i)
                      for i, s in enumerate(rng.integers(0, 86_400, total))]  # fmt: skip
            bulk_fill(boto3.client("dynamodb"), table, spread)
            store = AggregateStore(table)
            timings, calls, buckets = [], 0, 0
            for _ in range(5):
                t0 = time.perf_counter()
                rows, calls = store.read("minute", "ALL", now - timedelta(hours=24), now)
                timings.append(time.perf_counter() - t0)
                buckets = len(rows)
            reads[str(total)] = {
                "predictions": total, "buckets_read": buckets, "query_calls": calls,
                "load_s_median": round(float(np.median(timings)), 3),
            }  # fmt: skip
        ratio = reads["200000"]["load_s_median"] / reads["10000"]["load_s_median"]
        results["read_24h_minute_resolution"] = {**reads, "ratio_200k_over_10k": round(ratio, 2),
                                                 "target_ratio_at_most": 1.5}  # fmt: skip
        write_results("aggregator", results)
    finally:
        stop_process(moto)


if __name__ == "__main__":
    main()
