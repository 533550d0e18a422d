"""The stream aggregator against moto: events/ fixtures, exactly-once under redelivery,
reordering, splitting and partial failure, and the local stream reader's checkpoints."""

import random
from datetime import UTC, datetime

import pytest

from local.lambda_context import LambdaContext
from moderation.buckets import ALL_VERSIONS, review_queue_change, score_bin
from tests.fakes import FlakyAggregates, forget_container_state
from tests.paths import load_event as load


def counters(stack) -> dict[tuple[str, str], dict]:
    """Every aggregate bucket (dedupe markers and model records left out), keyed by (pk, sk)."""
    from moderation.stores.dynamo import deserialize

    table = stack.settings.aggregates_table
    items = [deserialize(i) for i in stack.dynamodb.scan(TableName=table)["Items"]]
    return {
        (i["pk"], i["sk"]): {k: v for k, v in i.items() if k not in ("pk", "sk")}
        for i in items
        if not i["pk"].startswith("seen#") and i["pk"] != "model"
    }


def reset(stack) -> None:
    """Empty the aggregate table (and the store's memory of which buckets exist)."""
    forget_container_state()
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


def test_modify_changes_nothing_and_replays_count_once(aggregator, stack):
    aggregator(load("stream_prediction_insert.json"))
    before = counters(stack)
    for name in ("stream_modify.json", "stream_prediction_insert.json"):
        assert aggregator(load(name)) == {"batchItemFailures": []}
    assert counters(stack) == before


def test_ttl_removal_of_a_pending_review_leaves_the_queue_once(aggregator, stack):
    # GIVEN a prediction waiting for review, counted into the queue
    aggregator(load("stream_prediction_insert.json"))
    assert counters(stack)[("lifetime#ALL", "-")]["review_in"] == 1
    # WHEN TTL removes it while still pending, and the removal is redelivered
    removal = load("stream_ttl_remove.json")
    assert aggregator(removal) == {"batchItemFailures": []}
    assert aggregator(removal) == {"batchItemFailures": []}
    # THEN it left the queue once, in the bucket of the removal time, and nothing else moved
    removed_at = datetime.fromtimestamp(
        removal["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], UTC
    )
    lifetime = counters(stack)[("lifetime#v1", "-")]
    assert lifetime["review_removed"] == 1 and lifetime["requests"] == 1
    assert review_queue_change(lifetime) == 0
    bucket = counters(stack)[("minute#v1", removed_at.strftime("%Y-%m-%dT%H:%M"))]
    assert bucket["review_removed"] == 1 and bucket["requests"] == 0


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


def test_partial_failure_reports_only_failed_records_and_retry_completes(
    aggregator, client, stack, monkeypatch
):
    from aggregator import counting

    records = live_records(client, stack)
    aggregator({"Records": records})
    clean = counters(stack)
    reset(stack)

    real = counting.get_aggregates()
    victims = records[1:3]
    failing = {
        f"{r['dynamodb']['Keys']['pk']['S']}#{r['dynamodb']['Keys']['sk']['S']}" for r in victims
    }
    monkeypatch.setattr(counting, "get_aggregates", lambda: FlakyAggregates(real, failing))
    response = aggregator({"Records": records})
    reported = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert reported == {r["dynamodb"]["SequenceNumber"] for r in victims}
    monkeypatch.setattr(counting, "get_aggregates", lambda: real)
    retried = [r for r in records if r["dynamodb"]["SequenceNumber"] in reported]
    assert aggregator({"Records": retried}) == {"batchItemFailures": []}
    assert counters(stack) == clean


def test_stream_reader_checkpoints_survive_a_restart(client, stack, tmp_path, monkeypatch):
    import boto3

    from aggregator import counting
    from aggregator.handler import handler
    from local.streams import Checkpoints, StreamReader

    forget_container_state()

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
    real = counting.get_aggregates()
    flaky = FlakyAggregates(real, {f"{fourth}#PREDICTION"})
    monkeypatch.setattr(counting, "get_aggregates", lambda: flaky)
    assert reader().poll() == 0  # failed: the checkpoint stays before it
    monkeypatch.setattr(counting, "get_aggregates", lambda: real)
    assert reader().poll() == 1  # retried from the failed record, counted once
    hour = next(v for k, v in counters(stack).items() if k[0] == "hour#ALL")
    assert hour["requests"] == 4


def with_version(event: dict, version: str) -> dict:
    event["Records"][0]["dynamodb"]["NewImage"]["model_version"] = {"S": version}
    return event


def test_first_record_of_a_version_records_its_bundle_reference(aggregator, stack, trained):
    from moderation.model.bundle import read_metadata
    from moderation.stores.aggregates import AggregateStore

    # GIVEN a prediction of the registered model v1 and one of an unregistered model
    aggregator(load("stream_prediction_insert.json"))
    aggregator(with_version(load("stream_cache_hit_insert.json"), "unregistered"))
    # WHEN the dashboard lists the versions and reads their records
    store = AggregateStore(stack.settings.aggregates_table, stack.dynamodb)
    models = {m.version: m for m in store.models()}
    # THEN v1 carries its bundle's thresholds and real-rate reference; unregistered has none
    assert store.versions() == ["v1", "unregistered"]
    reference = read_metadata(trained.bundle_dir).reference
    v1 = models["v1"]
    assert v1.reference_status == "recorded" and v1.model_name == "tfidf-nblr"
    assert v1.reference_score_histograms == reference.score_histograms
    assert v1.reference_positive_rate == pytest.approx(reference.positive_rate, abs=1e-6)
    assert set(v1.thresholds) == set(reference.positive_rate)
    assert models["unregistered"].reference_status == "none"
    assert not models["unregistered"].has_reference


def test_versions_is_one_query_not_a_scan(aggregator, stack):
    from moderation.stores.aggregates import AggregateStore

    aggregator(load("stream_prediction_insert.json"))
    calls = []

    class Recording:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(stack.dynamodb, name)

    assert AggregateStore(stack.settings.aggregates_table, Recording()).versions() == ["v1"]
    assert calls == ["query"]


def test_s3_failure_keeps_the_counts_and_the_reference_is_filled_in_later(stack):
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )

    from aggregator.counting import REFERENCE_RETRY_S, ModelRecorder, count_record
    from moderation.stores.aggregates import AggregateStore
    from moderation.stores.registry import ModelRegistry

    store = AggregateStore(stack.settings.aggregates_table, stack.dynamodb)
    now = [0.0]
    # GIVEN the model bucket unreadable (an S3 error on every call)
    recorder = ModelRecorder(store, ModelRegistry("no-such-bucket", stack.s3), lambda: now[0])
    records = [
        DynamoDBRecord(load(name)["Records"][0])
        for name in ("stream_prediction_insert.json", "stream_cache_hit_insert.json")
    ]
    # WHEN a prediction is counted
    assert count_record(records[0], store, recorder) == "counted"
    # THEN it is counted, and v1 is listed, its reference pending
    assert counters(stack)[("lifetime#v1", "-")]["requests"] == 1
    pending = store.model("v1")
    assert pending.reference_status == "pending" and "no-such-bucket" in pending.reference_note
    # WHEN S3 is back and the retry delay has passed, the next record fills the reference in
    recorder.registry = ModelRegistry(stack.settings.model_bucket, stack.s3)
    now[0] = REFERENCE_RETRY_S + 1
    assert count_record(records[1], store, recorder) == "counted"
    recorded = store.model("v1")
    assert recorded.reference_status == "recorded" and recorded.reference_note is None
    assert recorded.first_seen == pending.first_seen  # when v1 was first counted, kept
    assert counters(stack)[("lifetime#v1", "-")]["requests"] == 2
