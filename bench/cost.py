"""Cost benchmark (``make bench-cost``) -> bench/results/cost.json.

Read and write request units per operation, measured from the real items this code writes:
every DynamoDB call the service and the aggregator make (against moto, in-process) goes
through a meter that prices it by DynamoDB's rules from the items themselves (item size by
attribute names and values; writes per started 1 KB, reads per started 4 KB, halved when
eventually consistent, doubled inside transactions; an update costs the larger of the item
before and after). Then the cost per million predictions at on-demand prices (``PRICES``).

moto does not report consumed capacity, so the rules are applied here; where AWS rounds
differently (numbers' exact byte sizes), the figures are within a few bytes of an item.
"""

import math
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import write_results

#: On-demand prices, us-east-1, as published on the AWS pricing pages on 2026-12-02
#: (DynamoDB since its November 2024 reduction; REST API Gateway's first 333 million).
PRICES = {
    "date": "2026-12-02",
    "region": "us-east-1",
    "dynamodb_write_request_unit_per_million": 0.625,
    "dynamodb_read_request_unit_per_million": 0.125,
    "api_gateway_rest_per_million_requests": 3.50,
    "lambda_per_million_requests": 0.20,
    "lambda_arm64_per_gb_second": 0.0000133334,
}
#: Billed duration assumed for one API invocation on AWS (model ~0.2 ms, DynamoDB calls
#: ~5-10 ms each at p50): stated, not measured here.
API_BILLED_MS = 20
API_MEMORY_GB = 1.0
AGGREGATOR_MEMORY_GB = 0.5
AGGREGATOR_BILLED_MS_PER_BATCH = 200


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value (AWS's item-size rules)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


class Meter:
    """A boto3 DynamoDB client that prices every call it passes on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.units: dict[str, float] = defaultdict(float)

    def reset(self) -> dict[str, float]:
        spent, self.units = dict(self.units), defaultdict(float)
        return {k: round(v, 3) for k, v in spent.items()}

    def _item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.real.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _write(self, table: str, item_key: dict, new_item: dict | None, factor: int) -> None:
        old = self._item(table, item_key)
        self.units["write"] += factor * write_units(max(item_size(old), item_size(new_item)))

    def put_item(self, **kwargs: Any) -> Any:
        answer = self.real.put_item(**kwargs)
        self.units["write"] += write_units(item_size(kwargs["Item"]))
        return answer

    def update_item(self, **kwargs: Any) -> Any:
        old = self._item(kwargs["TableName"], kwargs["Key"])
        answer = self.real.update_item(**kwargs)
        new = self._item(kwargs["TableName"], kwargs["Key"])
        self.units["write"] += write_units(max(item_size(old), item_size(new)))
        return answer

    def batch_write_item(self, **kwargs: Any) -> Any:
        for requests in kwargs["RequestItems"].values():
            for request in requests:
                self.units["write"] += write_units(item_size(request["PutRequest"]["Item"]))
        return self.real.batch_write_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        before = []
        for action in kwargs["TransactItems"]:
            ((kind, op),) = action.items()
            key = op.get("Key") or {k: op["Item"][k] for k in ("pk", "sk") if k in op["Item"]}
            before.append((kind, op, key, self._item(op["TableName"], key)))
        answer = self.real.transact_write_items(**kwargs)
        for _kind, op, key, old in before:
            new = self._item(op["TableName"], key)
            self.units["write"] += 2 * write_units(max(item_size(old), item_size(new)))
        return answer

    def get_item(self, **kwargs: Any) -> Any:
        answer = self.real.get_item(**kwargs)
        size = item_size(answer.get("Item"))
        self.units["read"] += read_units(size, kwargs.get("ConsistentRead", False))
        return answer

    def batch_get_item(self, **kwargs: Any) -> Any:
        answer = self.real.batch_get_item(**kwargs)
        for table, request in kwargs["RequestItems"].items():
            found = {
                tuple(sorted((k, str(v)) for k, v in item.items() if k in request["Keys"][0]))
                for item in answer["Responses"].get(table, [])
            }
            sizes = {
                tuple(sorted((k, str(v)) for k, v in item.items() if k in request["Keys"][0])):
                item_size(item)
                for item in answer["Responses"].get(table, [])
            }  # fmt: skip
            for key in request["Keys"]:
                signature = tuple(sorted((k, str(v)) for k, v in key.items()))
                size = sizes.get(signature, 0) if signature in found else 0
                self.units["read"] += read_units(size, request.get("ConsistentRead", False))
        return answer

    def query(self, **kwargs: Any) -> Any:
        answer = self.real.query(**kwargs)
        size = sum(item_size(i) for i in answer.get("Items", []))
        self.units["read"] += read_units(size, kwargs.get("ConsistentRead", False))
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    import boto3
    from moto import mock_aws

    from aggregator.counting import ModelRecorder, count_batch
    from bench.aggregator import stream_event, synthetic_item
    from local.resources import create_resources
    from moderation.labels import LABELS
    from moderation.service import ModerationService, PredictOptions
    from moderation.settings import Settings
    from moderation.stores.aggregates import AggregateStore
    from moderation.stores.prediction_log import PredictionLog
    from moderation.stores.registry import ModelRegistry
    from tests.fakes import FixedModel, tiny_scorer
    from training.data import SAMPLE_DIR, load_test

    texts = [t for t in load_test(SAMPLE_DIR)[0]["comment_text"] if t.strip()][:400]
    with mock_aws():
        settings = Settings()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_resources(settings, dynamodb, boto3.client("s3", region_name="us-east-1"))
        meter = Meter(dynamodb)
        store = PredictionLog(settings.predictions_table, settings.cache_table, meter)
        aggregates = AggregateStore(settings.aggregates_table, meter)
        # the real service over the real stores; the model is the fakes' tiny real scorer
        # (the model does not change what is stored, only which labels are flagged)
        service = ModerationService(FixedModel(tiny_scorer()), store, settings, aggregates)
        per_operation: dict[str, dict[str, float]] = {}

        def measure(name: str, runs: int, call) -> None:
            meter.reset()
            for i in range(runs):
                call(i)
            spent = meter.reset()
            per_operation[name] = {k: round(v / runs, 3) for k, v in spent.items()}

        everything = PredictOptions(thresholds=dict.fromkeys(LABELS, 0.0))
        measure("single_prediction_cache_miss", 100,
                lambda i: service.predict([texts[i]], PredictOptions(), "k"))  # fmt: skip
        measure("single_prediction_cache_hit", 100,
                lambda i: service.predict([texts[i]], PredictOptions(), "k"))  # fmt: skip

        def batch_of_100(i: int) -> None:
            service.predict(texts[200 + 100 * i : 300 + 100 * i], PredictOptions(), "k")

        measure("batch_of_100_new_comments", 2, batch_of_100)
        ids = [p.request_id for p in service.predict(texts[:50], everything, "k")]
        measure("feedback", 20, lambda i: service.feedback(ids[i], True, None, None, "api"))
        review = [p.request_id for p in service.predict(texts[50:80], everything, "k2")]
        measure("review_decision", 20,
                lambda i: service.decide_review(review[i], "approve", None, "m", None))  # fmt: skip

        # the aggregator: real log items, a batch as the stream would deliver it
        recorder = ModelRecorder(aggregates, ModelRegistry(settings.model_bucket))
        import numpy as np

        rng = np.random.default_rng(3)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        stream = {}
        for size in (100, 1000):
            # a batch's records are consecutive: a shard's traffic of the last minute
            records = [synthetic_item(rng, now - timedelta(seconds=60 - 60 * i / size), i)
                       for i in range(size)]  # fmt: skip
            meter.reset()
            outcome = count_batch(stream_event(records, f"shard-{size}"), aggregates, recorder)
            assert outcome.counted == size
            spent = meter.reset()
            stream[f"batch_of_{size}"] = {k: round(v / size, 4) for k, v in spent.items()}
        per_operation["per_stream_record"] = stream["batch_of_100"]
        per_operation["per_stream_record_batch_of_1000"] = stream["batch_of_1000"]

    wru = PRICES["dynamodb_write_request_unit_per_million"]
    rru = PRICES["dynamodb_read_request_unit_per_million"]

    def dollars(units: dict[str, float]) -> float:
        return units.get("write", 0) * wru + units.get("read", 0) * rru

    api_lambda = PRICES["lambda_per_million_requests"] + (
        API_MEMORY_GB * API_BILLED_MS / 1000 * PRICES["lambda_arm64_per_gb_second"] * 1e6
    )
    aggregator_lambda = (
        AGGREGATOR_MEMORY_GB * AGGREGATOR_BILLED_MS_PER_BATCH / 1000
        * PRICES["lambda_arm64_per_gb_second"] * 1e6 + PRICES["lambda_per_million_requests"]
    ) / 100  # fmt: skip
    single = {
        "api_gateway": PRICES["api_gateway_rest_per_million_requests"],
        "api_lambda": round(api_lambda, 3),
        "dynamodb_api": round(dollars(per_operation["single_prediction_cache_miss"]), 3),
        "dynamodb_aggregator": round(dollars(per_operation["per_stream_record"]), 3),
        "aggregator_lambda": round(aggregator_lambda, 4),
    }  # fmt: skip
    single["total"] = round(sum(single.values()), 3)
    results = {
        "prices": PRICES,
        "assumptions": {
            "api_billed_ms": API_BILLED_MS,
            "aggregator_batch": "100 records a batch, 200 ms billed at 512 MB",
            "comments": "the committed sample's test comments",
            "stream_batches": "each batch a shard's last minute; its first write creates the "
            "minute's bucket copies (counted here)",
        },
        "units_per_operation": per_operation,
        "dollars_per_million_single_predictions_cache_miss": single,
        "targets": {"aggregator_write_units_per_prediction": 1, "dollars_per_million": 8},
    }
    write_results("cost", results)


if __name__ == "__main__":
    main()
