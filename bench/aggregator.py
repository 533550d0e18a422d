"""Aggregator benchmark (``make bench-aggregator``) -> bench/results/aggregator.json.

Against its own moto server (a subprocess on loopback): records per second through the
aggregator handler; the aggregate-table reads needed to draw 24 hours at minute resolution;
and the time to load those 24 hours after 10,000 and after 200,000 logged predictions.

For the 10k / 200k read test the buckets are filled with the same per-bucket counter sums the
handler would produce (``prediction_counters`` summed per minute and hour), written directly:
pushing 200,000 records through the handler takes longer than a benchmark should, and the
read cost depends only on the resulting bucket items, which are identical.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from botocore.config import Config

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


def stream_event(items: list[dict], shard: str = "shardId-bench", first: int = 1000) -> dict:
    """One shard's batch as Lambda delivers it (sequence numbers from ``first``)."""
    from moderation.stores.dynamo import serialize

    return {
        "shardId": shard,
        "Records": [
            {
                "eventID": f"{i:032d}", "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/p/stream/x",
                "dynamodb": {"Keys": serialize({"pk": it["pk"], "sk": it["sk"]}),
                             "NewImage": serialize(it), "SequenceNumber": str(first + i),
                             "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }
            for i, it in enumerate(items)
        ]
    }  # fmt: skip


def per_record_transaction(client, table: str, item: dict) -> None:
    """The design this one replaced, for the benchmark's "before": every stream record one
    transaction of a marker put and an update of each of its six buckets."""
    from moderation.buckets import all_counters, bucket_keys, prediction_counters
    from moderation.records import PredictionRecord
    from moderation.stores.dynamo import serialize

    record = PredictionRecord.model_validate(item)
    moment = datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
    counters = prediction_counters(record)
    names = {f"#c{i}": n for i, n in enumerate(counters)}
    values = serialize({f":v{i}": v for i, v in enumerate(counters.values())})
    expression = "ADD " + ", ".join(f"{n} :v{i}" for i, n in enumerate(names))
    keys = bucket_keys(moment, record.model_version)
    for pk, sk in keys:  # the old design created each bucket with every counter at zero once
        if (table, pk, sk) not in _CREATED:
            zeros = dict.fromkeys(all_counters(), 0)
            client.put_item(TableName=table, Item=serialize({"pk": pk, "sk": sk, **zeros}))
            _CREATED.add((table, pk, sk))
    marker = {
        "Put": {
            "TableName": table,
            "ConditionExpression": "attribute_not_exists(pk)",
            "Item": serialize({"pk": f"seen#{item['pk']}#{item['sk']}", "sk": "-"}),
        }
    }
    updates = [
        {
            "Update": {
                "TableName": table,
                "Key": serialize({"pk": pk, "sk": sk}),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        for pk, sk in keys
    ]
    client.transact_write_items(TransactItems=[marker, *updates])  # fmt: skip


_CREATED: set[tuple[str, str, str]] = set()


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

        from aggregator import counting
        from aggregator.handler import handler
        from local.moto_server import wait_for_moto
        from local.resources import create_resources
        from moderation.settings import Settings, get_settings
        from moderation.stores.aggregates import AggregateStore

        wait_for_moto(scratch)
        rng = np.random.default_rng(3)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        results: dict = {"moto": "server mode on loopback (separate process)"}

        # 1. records/s through the handler, batches of 100 and 1,000, this design and the
        #    per-record one it replaced (re-enacted below against the same server)
        settings = get_settings()
        create_resources(settings)
        client = boto3.client("dynamodb")
        throughput = {}
        for batch_size in (100, 1000):
            for design, count in (("batch_merge_high_water_mark", 5000), ("per_record", 600)):
                table = f"bench-{design}-{batch_size}"
                create_resources(Settings(aggregates_table=table))
                # a stream delivers records in the order they were written, oldest first:
                # here the last five minutes' traffic (a busy shard's)
                ages = np.sort(rng.integers(0, 300, count))[::-1]
                items = [synthetic_item(rng, now - timedelta(seconds=int(s)), i)
                         for i, s in enumerate(ages)]  # fmt: skip
                os.environ["AGGREGATES_TABLE"] = table  # a fresh container on this table
                get_settings.cache_clear()
                counting.get_aggregates.cache_clear()
                counting.get_model_recorder.cache_clear()
                start = time.perf_counter()
                for offset in range(0, len(items), batch_size):
                    chunk = items[offset : offset + batch_size]
                    if design == "per_record":
                        for item in chunk:
                            per_record_transaction(client, table, item)
                    else:
                        event = stream_event(chunk, first=1000 + offset)
                        assert not handler(event, LambdaContext())["batchItemFailures"]
                elapsed = time.perf_counter() - start
                throughput[f"{design}_batch_{batch_size}"] = {
                    "records": len(items), "seconds": round(elapsed, 2),
                    "records_per_s": round(len(items) / elapsed, 1),
                }  # fmt: skip
        results["handler_throughput"] = throughput
        print(json.dumps(throughput, indent=1), flush=True)
        os.environ.pop("AGGREGATES_TABLE", None)
        get_settings.cache_clear()

        # 2. reading 24 hours at minute resolution after 10k and 200k predictions
        reads = {}
        for total in (10_000, 200_000):
            table = f"bench-aggregates-{total}"
            create_resources(Settings(aggregates_table=table))
            spread = [synthetic_item(rng, now - timedelta(seconds=int(s)), i)
                      for i, s in enumerate(rng.integers(0, 86_400, total))]  # fmt: skip
            bulk_fill(boto3.client("dynamodb"), table, spread)
            # moto serialises a day of minute buckets slowly: past the SDK's 5 s read timeout
            slow_reads = boto3.client("dynamodb", config=Config(read_timeout=300))
            store = AggregateStore(table, slow_reads)
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
