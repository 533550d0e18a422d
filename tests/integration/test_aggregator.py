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
    """Every aggregate bucket (high-water marks and model records left out), keyed by
    (pk, bucket), each shard's copy of a bucket summed as the dashboard reads them."""
    from moderation.buckets import bucket_of
    from moderation.stores.dynamo import deserialize

    table = stack.settings.aggregates_table
    items = [deserialize(i) for i in stack.dynamodb.scan(TableName=table)["Items"]]
    merged: dict[tuple[str, str], dict] = {}
    for item in items:
        if item["pk"].startswith("hwm#") or item["pk"] == "model":
            continue
        total = merged.setdefault((item["pk"], bucket_of(item["sk"])), {})
        for name, value in item.items():
            if name not in ("pk", "sk"):
                total[name] = total.get(name, 0) + value
    return merged


def batch(records: list[dict], shard: str = "shardId-0001") -> dict:
    """A stream batch as Lambda delivers it: one shard's records, in order, its id named."""
    ordered = sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    return {"Records": ordered, "shardId": shard}


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
    assert aggregator(batch(records)) == {"batchItemFailures": []}
    clean = counters(stack)
    assert clean[("hour#ALL", next(k[1] for k in clean if k[0] == "hour#ALL"))]["requests"] == 9

    # GIVEN the same records spread over three shards (each shard's in order, as Lambda
    # keeps them), delivered as batches of two with the shards' batches interleaved at random
    reset(stack)
    shards = {f"shardId-{n}": records[n::3] for n in range(3)}
    batches = [
        batch(shard_records[i : i + 2], shard)
        for shard, shard_records in shards.items()
        for i in range(0, len(shard_records), 2)
    ]
    per_shard = {shard: [b for b in batches if b["shardId"] == shard] for shard in shards}
    picks = random.Random(5).choices(list(shards), k=4 * len(batches))
    order = [per_shard[shard].pop(0) for shard in picks if per_shard[shard]]
    order += [b for rest in per_shard.values() for b in rest]
    assert len(order) == len(batches)
    # WHEN they arrive, two batches are redelivered, and everything comes once more
    for delivered in [*order, order[0], order[-1]]:
        assert aggregator(delivered) == {"batchItemFailures": []}
    for shard, shard_records in shards.items():
        aggregator(batch(shard_records, shard))
    # THEN the tables are those of one clean pass
    assert counters(stack) == clean


def test_a_bisected_batch_and_a_retry_whose_write_landed_count_once(aggregator, client, stack):
    records = live_records(client, stack)
    aggregator(batch(records))
    clean = counters(stack)
    reset(stack)
    # GIVEN a batch whose write landed but whose invocation timed out (Lambda saw an error)
    aggregator(batch(records))
    # WHEN Lambda retries it bisected, then whole, then a half that overlaps the mark
    half = len(records) // 2
    for part in (records[:half], records[half:], records, records[half - 1 :]):
        assert aggregator(batch(part)) == {"batchItemFailures": []}
    # THEN nothing was counted twice
    assert counters(stack) == clean


def test_two_shards_written_concurrently_touch_disjoint_items(
    aggregator, client, stack, monkeypatch
):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from aggregator import counting
    from moderation.stores.aggregates import AggregateStore

    records = live_records(client, stack)
    aggregator(batch(records))
    clean = counters(stack)
    reset(stack)
    # GIVEN every item each transaction writes recorded (moto's in-process backend is not
    # thread-safe, so its calls are serialised; the workers still interleave batch by batch)
    lock, written = threading.Lock(), []

    class Recording:
        def __getattr__(self, name):
            call = getattr(stack.dynamodb, name)

            def locked(**kwargs):
                with lock:
                    if name == "transact_write_items":
                        keys = [next(iter(a.values()))["Key"] for a in kwargs["TransactItems"]]
                        written.append({(k["pk"]["S"], k["sk"]["S"]) for k in keys})
                    return call(**kwargs)

            return locked

    store = AggregateStore(stack.settings.aggregates_table, Recording())
    monkeypatch.setattr(counting, "get_aggregates", lambda: store)
    halves = {"shardId-a": records[0::2], "shardId-b": records[1::2]}

    def work(shard: str) -> list[dict]:
        own = halves[shard]
        return [aggregator(batch(own[i : i + 2], shard)) for i in range(0, len(own), 2)]

    # WHEN two workers count two shards' records at the same time
    with ThreadPoolExecutor(2) as pool:
        answers = [a for answers in pool.map(work, halves) for a in answers]
    # THEN no item was written by both (on DynamoDB: no TransactionConflict) and sums agree
    assert all(a == {"batchItemFailures": []} for a in answers)
    by_shard = {shard: set() for shard in halves}
    for keys in written:
        (mark,) = [pk for pk, _ in keys if pk.startswith("hwm#")]
        by_shard[mark.removeprefix("hwm#")] |= keys
    assert by_shard["shardId-a"] and not by_shard["shardId-a"] & by_shard["shardId-b"]
    assert counters(stack) == clean


def test_a_store_failure_reports_the_batch_for_retry_and_the_retry_completes(
    aggregator, client, stack, monkeypatch
):
    from aggregator import counting

    records = live_records(client, stack)
    aggregator(batch(records))
    clean = counters(stack)
    reset(stack)

    real = counting.get_aggregates()
    # GIVEN the aggregates table failing the batch's write
    flaky = FlakyAggregates(real, failures=1)
    monkeypatch.setattr(counting, "get_aggregates", lambda: flaky)
    response = aggregator(batch(records))
    # THEN Lambda is told to retry from the batch's first record, and nothing was counted
    first = min(int(r["dynamodb"]["SequenceNumber"]) for r in records)
    assert response == {"batchItemFailures": [{"itemIdentifier": str(first)}]}
    assert all(v.get("requests", 0) == 0 for v in counters(stack).values())
    # WHEN it retries THEN every record is counted once
    assert aggregator(batch(records)) == {"batchItemFailures": []}
    assert counters(stack) == clean


def test_a_record_that_is_no_log_item_goes_whole_to_the_dead_letter_queue(
    aggregator, stack, monkeypatch
):
    import json

    import boto3

    from aggregator import counting

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="aggregator-dead-letters")["QueueUrl"]
    monkeypatch.setattr(counting, "get_dead_letters", lambda: counting.DeadLetters(queue, sqs))
    event = load("stream_prediction_insert.json")
    poison = json.loads(json.dumps(event["Records"][0]))
    poison["dynamodb"]["SequenceNumber"] = "99"
    poison["dynamodb"]["NewImage"]["scores"] = {"S": "not scores"}
    event["Records"].insert(0, poison)
    # WHEN a batch holds a record that cannot be counted beside a good one
    assert aggregator(event) == {"batchItemFailures": []}
    # THEN the good one is counted and the bad one waits, whole, in the queue
    assert counters(stack)[("lifetime#v1", "-")]["requests"] == 1
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(message["Body"])
    assert body["deadLetteredRecord"] == poison and "ValidationError" in body["reason"]


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
    client.post("/predict", json={"comment_text": "four"})
    real = counting.get_aggregates()
    flaky = FlakyAggregates(real, failures=1)
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
    from aggregator.counting import REFERENCE_RETRY_S, ModelRecorder, count_batch
    from moderation.stores.aggregates import AggregateStore
    from moderation.stores.registry import ModelRegistry

    store = AggregateStore(stack.settings.aggregates_table, stack.dynamodb)
    now = [0.0]
    # GIVEN the model bucket unreadable (an S3 error on every call)
    recorder = ModelRecorder(store, ModelRegistry("no-such-bucket", stack.s3), lambda: now[0])
    events = [
        load(name) for name in ("stream_prediction_insert.json", "stream_cache_hit_insert.json")
    ]
    # WHEN a prediction is counted
    assert count_batch(events[0], store, recorder).counted == 1
    # THEN it is counted, and v1 is listed, its reference pending
    assert counters(stack)[("lifetime#v1", "-")]["requests"] == 1
    pending = store.model("v1")
    assert pending.reference_status == "pending" and "no-such-bucket" in pending.reference_note
    # WHEN S3 is back and the retry delay has passed, the next record fills the reference in
    recorder.registry = ModelRegistry(stack.settings.model_bucket, stack.s3)
    now[0] = REFERENCE_RETRY_S + 1
    assert count_batch(events[1], store, recorder).counted == 1
    recorded = store.model("v1")
    assert recorded.reference_status == "recorded" and recorded.reference_note is None
    assert recorded.first_seen == pending.first_seen  # when v1 was first counted, kept
    assert counters(stack)[("lifetime#v1", "-")]["requests"] == 2


def test_the_redrive_counts_a_given_up_range_and_a_fixed_record_exactly_once(
    aggregator, client, stack
):
    import json

    import boto3

    from aggregator.redrive import Redrive
    from moderation.stores.aggregates import AggregateStore

    records = live_records(client, stack)
    aggregator(batch(records))
    clean = counters(stack)
    reset(stack)
    # GIVEN Lambda gave up on a middle batch of the shard and went on past it
    shard = "shardId-0001"
    arn = records[0]["eventSourceARN"]
    given_up = records[3:6]
    aggregator(batch(records[:3], shard))
    aggregator(batch(records[6:], shard))
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="aggregator-dead-letters")["QueueUrl"]
    moto_shard = boto3.client("dynamodbstreams", region_name="us-east-1").describe_stream(
        StreamArn=arn
    )["StreamDescription"]["Shards"][0]["ShardId"]
    failure = {
        "DDBStreamBatchInfo": {
            "shardId": moto_shard,
            "startSequenceNumber": given_up[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": given_up[-1]["dynamodb"]["SequenceNumber"],
            "batchSize": len(given_up),
            "streamArn": arn,
        }
    }
    for _ in range(2):  # SQS delivers at least once: the same message twice
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(failure))
    store = AggregateStore(stack.settings.aggregates_table, stack.dynamodb)
    # WHEN the re-drive runs (twice)
    report = Redrive(queue, sqs, aggregates=store).run()
    again = Redrive(queue, sqs, aggregates=store).run()
    # THEN the range is counted once, the queue is empty, and the tables equal a clean pass
    assert report.messages == 2 and not report.kept and again.messages == 0
    assert report.duplicates == len(given_up) and report.counted == len(given_up)
    assert counters(stack) == clean
