"""The stream aggregator against moto: events/ fixtures, exactly-once under redelivery,
reordering, splitting and partial failure, and the local stream reader's checkpoints."""

import json
import random

import pytest

from moderation.aggregation import ALL_VERSIONS, score_bin
from moderation.errors import StoreUnavailable
from tests.conftest import EVENTS
from tests.integration.test_handler import LambdaContext


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def aggregator(stack):
    from aggregator import logic
    from aggregator.handler import handler

    logic.get_aggregates.cache_clear()
    yield lambda event: handler(event, LambdaContext())
    logic.get_aggregates.cache_clear()


def counters(stack) -> dict[tuple[str, str], dict]:
    """Every aggregate bucket (dedupe markers left out), keyed by (pk, sk)."""
    from moderation.store import deserialize

    table = stack.settings.aggregates_table
    items = [deserialize(i) for i in stack.dynamodb.scan(TableName=table)["Items"]]
    return {
        (i["pk"], i["sk"]): {k: v for k, v in i.items() if k not in ("pk", "sk")}
        for i in items
        if not i["pk"].startswith("seen#")
    }


def reset(stack) -> None:
    """Empty the aggregate table (and the store's memory of which buckets exist)."""
    from aggregator import logic

    logic.get_aggregates.cache_clear()
    table = stack.settings.aggregates_table
    for item in stack.dynamodb.scan(TableName=table)["Items"]:
        stack.dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_event_fixtures_update_the_right_counters(aggregator, stack):
    for name in ("stream_prediction_insert.json", "stream_cache_hit_insert.json"):
        assert aggregator(load(name)) == {"batchItemFailures": []}
    aggregator(load("stream_feedback_insert.json"))
    minute = counters(stack)[("minute#v1", "2026-11-24T10:15")]
    assert minute["requests"] == 2 and minute["cache_hits"] == 1
    assert minute["decision_review"] == 2 and minute["review_in"] == 2
    assert minute["pos_toxic"] == 2 and minute["pos_threat"] == 0
    assert minute[f"h_toxic_{score_bin(0.91):02d}"] == 2
    assert sum(v for k, v in minute.items() if k.startswith("lat_")) == 2
    feedback = counters(stack)[("minute#v1", "2026-11-24T10:20")]
    assert feedback["fb_incorrect"] == 1 and feedback["review_out"] == 1
    assert (feedback["tp_insult"], feedback["fp_toxic"], feedback["tn_threat"]) == (1, 1, 1)
    for resolution, sk in (("hour", "2026-11-24T10"), ("minute", "2026-11-24T10:15")):
        assert counters(stack)[(f"{resolution}#{ALL_VERSIONS}", sk)]["requests"] == 2


def test_modify_and_ttl_remove_change_nothing_and_replays_count_once(aggregator, stack):
    aggregator(load("stream_prediction_insert.json"))
    before = counters(stack)
    for name in ("stream_modify.json", "stream_ttl_remove.json", "stream_prediction_insert.json"):
        assert aggregator(load(name)) == {"batchItemFailures": []}
    assert counters(stack) == before


def live_records(client, stack) -> list[dict]:
    """Real stream records produced by real API traffic (predictions, cache hits, feedback,
    a review decision), read from moto's DynamoDB stream."""
    import boto3

    texts = ["you are an idiot", "nice work on the article", "you are an IDIOT", "go away moron"]
    ids = [client.post("/predict", json={"comment_text": t}).json()["request_id"] for t in texts]
    batch = client.post("/predict/batch", json={"comments": texts}).json()["results"]
    client.post("/feedback", json={"request_id": ids[0], "correct": True})
    client.post(
        "/feedback", json={"request_id": ids[1], "correct": False, "true_labels": ["toxic"]}
    )
    forced = client.post("/predict", json={"comment_text": "hmm", "thresholds": {"toxic": 0.0}})
    client.post(
        f"/reviews/{forced.json()['request_id']}", json={"action": "approve", "moderator": "m"}
    )
    assert len(batch) == 4
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = stack.dynamodb.describe_table(TableName=stack.settings.predictions_table)["Table"][
        "LatestStreamArn"
    ]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY"}
    return [{**r, "eventSourceARN": arn} for r in records]


def test_redelivered_shuffled_and_split_batches_give_the_same_tables(aggregator, client, stack):
    records = live_records(client, stack)
    aggregator({"Records": records})
    clean = counters(stack)
    assert clean[("hour#ALL", next(k[1] for k in clean if k[0] == "hour#ALL"))]["requests"] == 9

    reset(stack)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    batches = [shuffled[i : i + 3] for i in range(0, len(shuffled), 3)]
    for batch in [*batches, batches[0], batches[-1]]:  # two batches redelivered
        aggregator({"Records": batch})
    aggregator({"Records": records})  # and everything once more
    assert counters(stack) == clean


class FlakyAggregates:
    """The aggregate store failing for chosen items, at the client edge of the handler."""

    def __init__(self, real, failing: set[str]) -> None:
        self.real, self.failing = real, failing

    def apply(self, item_key, *args):
        if item_key in self.failing:
            raise StoreUnavailable("throttled")
        return self.real.apply(item_key, *args)


def test_partial_failure_reports_only_failed_records_and_retry_completes(
    aggregator, client, stack, monkeypatch
):
    from aggregator import logic

    records = live_records(client, stack)
    aggregator({"Records": records})
    clean = counters(stack)
    reset(stack)

    real = logic.get_aggregates()
    victims = records[1:3]
    failing = {
        f"{r['dynamodb']['Keys']['pk']['S']}#{r['dynamodb']['Keys']['sk']['S']}" for r in victims
    }
    monkeypatch.setattr(logic, "get_aggregates", lambda: FlakyAggregates(real, failing))
    response = aggregator({"Records": records})
    reported = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert reported == {r["dynamodb"]["SequenceNumber"] for r in victims}
    monkeypatch.setattr(logic, "get_aggregates", lambda: real)
    retried = [r for r in records if r["dynamodb"]["SequenceNumber"] in reported]
    assert aggregator({"Records": retried}) == {"batchItemFailures": []}
    assert counters(stack) == clean


def test_stream_reader_checkpoints_survive_a_restart(client, stack, tmp_path, monkeypatch):
    import boto3

    from aggregator import logic
    from aggregator.handler import handler
    from aggregator.stream_reader import Checkpoints, StreamReader

    logic.get_aggregates.cache_clear()

    def reader(batch_size: int = 100) -> StreamReader:
        return StreamReader(
            stack.settings.predictions_table,
            handler,
            Checkpoints(tmp_path / "checkpoints.json"),
            stack.dynamodb,
            boto3.client("dynamodbstreams", region_name="us-east-1"),
            batch_size=batch_size,
            context=LambdaContext(),
        )

    for text in ("one", "two", "three"):
        client.post("/predict", json={"comment_text": f"comment {text}"})
    assert reader(batch_size=2).poll() == 2
    assert reader().poll() == 1  # a restarted reader resumes after the checkpoint
    assert reader().poll() == 0  # ...and repeats nothing
    fourth = client.post("/predict", json={"comment_text": "four"}).json()["request_id"]
    real = logic.get_aggregates()
    flaky = FlakyAggregates(real, {f"{fourth}#PREDICTION"})
    monkeypatch.setattr(logic, "get_aggregates", lambda: flaky)
    assert reader().poll() == 0  # failed: the checkpoint stays before it
    monkeypatch.setattr(logic, "get_aggregates", lambda: real)
    assert reader().poll() == 1  # retried from the failed record, counted once
    hour = next(v for k, v in counters(stack).items() if k[0] == "hour#ALL")
    assert hour["requests"] == 4
