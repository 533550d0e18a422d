"""The local moto server's durable state, as a process (``python -m local moto``): a damaged
snapshot or journal is reported in one line and the last good state is used, a state that
cannot be rebuilt is set aside rather than crashing, moto's own recording of earlier
versions is adopted, and waiting processes say what they wait for."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from local.moto_server import moto_status, wait_for_moto
from local.moto_state import journal_entry, snapshot_path
from local.processes import REPO, free_port, stack_env, wait_until

pytestmark = pytest.mark.slow


class Moto:
    """One ``python -m local moto`` over ``state``, on a free port."""

    def __init__(self, state: Path, **env: str) -> None:
        self.state, self.log = state, state.parent / f"{state.name}-moto.log"
        self.env = {**stack_env(state, state / "artifacts"), **env}
        self.endpoint = self.env["AWS_ENDPOINT_URL"]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Moto":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local", "moto"],
            cwd=REPO, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_moto(endpoint=self.endpoint, timeout=60, say=lambda _message: None)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
        )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text()


def create_table(moto: Moto) -> None:
    moto.client("dynamodb").create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def put(moto: Moto, keys: range) -> None:
    client = moto.client("dynamodb")
    for i in keys:
        client.put_item(TableName="t", Item={"pk": {"S": f"k{i:04d}"}, "n": {"N": str(i)}})


def stream(moto: Moto) -> list[tuple[str, str]]:
    """(sequence number, key) of every record of the table's stream."""
    streams = moto.client("dynamodbstreams")
    arn = moto.client("dynamodb").describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [(r["dynamodb"]["SequenceNumber"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]


def keys(moto: Moto) -> list[str]:
    items = moto.client("dynamodb").scan(TableName="t")["Items"]
    return sorted(item["pk"]["S"] for item in items)


def snapshots(state: Path) -> list[Path]:
    return sorted(state.glob("moto-snapshot-*.pickle"))


def test_a_damaged_newest_snapshot_falls_back_to_the_one_before(tmp_path):
    state = tmp_path / "state"
    # GIVEN a moto that took snapshots while it was written to, then a last one on stop
    with Moto(state, MOTO_SNAPSHOT_WRITES="20") as moto:
        create_table(moto)
        put(moto, range(30))
        wait_until(lambda: len(snapshots(state)) >= 1, "a snapshot", 30)
        put(moto, range(30, 60))
        wait_until(lambda: len(snapshots(state)) >= 2, "a second snapshot", 30)
        put(moto, range(60, 80))
        before = stream(moto)
    assert len(snapshots(state)) == 2  # the two newest are kept, older files deleted
    # WHEN the newest is cut short (a disk full, say)
    newest = snapshots(state)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    with Moto(state) as moto:
        # THEN moto says so in one line, uses the one before and the journal after it, and
        # its state is whole: every item, every stream record with its sequence number
        unusable = [line for line in moto.output().splitlines() if "unusable" in line]
        assert len(unusable) == 1 and newest.name in unusable[0] and "truncated" in unusable[0]
        assert keys(moto) == [f"k{i:04d}" for i in range(80)]
        assert stream(moto) == before
        assert moto_status(moto.endpoint)["load"]["snapshot"] == snapshots(state)[0].name


def test_damaged_journal_records_are_skipped_and_reported(tmp_path):
    state = tmp_path / "state"
    with Moto(state) as moto:
        create_table(moto)
        put(moto, range(5))
        moto.process.kill()  # no last snapshot: the journal alone holds the state
        moto.process.wait()
        (journal,) = state.glob("moto-journal-*.jsonl")
        lines = journal.read_text().splitlines(keepends=True)
        # a line damaged in the middle (k0003's write) and a last record cut short
        lines[4] = lines[4][:40] + "\n"
        journal.write_text("".join(lines) + lines[-1][:30])
    with Moto(state) as moto:
        output = moto.output()
        assert "1 damaged record(s) skipped" in output and "cut short by a crash" in output
        assert keys(moto) == ["k0000", "k0001", "k0002", "k0004"]


def test_a_state_that_cannot_be_rebuilt_is_set_aside_and_moto_starts_empty(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    # a journal that does not start at segment 0 and no snapshot to go with it
    (state / "moto-journal-000007.jsonl").write_text(journal_entry({"REQUEST_METHOD": "PUT"}, b""))
    (state / "stream-checkpoints.json").write_text("{}")
    with Moto(state) as moto:
        assert "state cannot be rebuilt" in moto.output()
        assert moto.client("dynamodb").list_tables()["TableNames"] == []
    (aside,) = state.glob("unrestorable-*")
    assert sorted(p.name for p in aside.iterdir()) == [
        "moto-journal-000007.jsonl", "stream-checkpoints.json",
    ]  # fmt: skip
    assert not snapshot_path(state, 7).exists()


def legacy_line(target: str, body: dict) -> str:
    """A request as moto's own recorder wrote it (``moto_recording.jsonl``)."""
    scope = "local/20260101/us-east-1/dynamodb/aws4_request"
    headers = {
        "Host": "127.0.0.1:5000",
        "X-Amz-Target": f"DynamoDB_20120810.{target}",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0",
    }
    return json.dumps(
        {"headers": headers, "method": "POST", "url": "http://127.0.0.1:5000/",
         "body": json.dumps(body), "body_encoded": False}
    ) + "\n"  # fmt: skip


def test_motos_recording_of_earlier_versions_is_adopted_once(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    table = {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    (state / "moto_recording.jsonl").write_text(
        legacy_line("CreateTable", table)
        + legacy_line("Scan", {"TableName": "t"})
        + legacy_line("PutItem", {"TableName": "t", "Item": {"pk": {"S": "old"}}})
    )
    with Moto(state) as moto:
        assert keys(moto) == ["old"]
        assert "converting" in moto.output()
    assert not (state / "moto_recording.jsonl").exists()
    with Moto(state) as moto:
        assert keys(moto) == ["old"]


def test_waiting_for_moto_says_what_it_waits_for(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    said: list[str] = []
    with pytest.raises(TimeoutError, match="not answering yet"):
        wait_for_moto(endpoint=endpoint, timeout=0.5, say=said.append)
    assert said == [f"waiting for moto at {endpoint} (not answering yet)"]


def test_queues_and_their_messages_are_in_the_snapshot(tmp_path):
    state = tmp_path / "state"
    # GIVEN the webhook queue with messages waiting, and a snapshot taken after them
    with Moto(state, MOTO_SNAPSHOT_WRITES="5") as moto:
        sqs = moto.client("sqs")
        url = sqs.create_queue(QueueName="toxic-moderation-webhooks")["QueueUrl"]
        for i in range(6):
            sqs.send_message(QueueUrl=url, MessageBody=f"delivery {i}")
        wait_until(lambda: len(snapshots(state)) >= 1, "a snapshot", 30)
    # WHEN moto starts again from that snapshot
    with Moto(state) as moto:
        # THEN it loaded the snapshot (queues hold locks, which are pickled as new ones)
        # and every message is still there to deliver
        assert moto_status(moto.endpoint)["load"]["snapshot"]
        assert "snapshot writer failed" not in moto.output()
        sqs = moto.client("sqs")
        url = sqs.get_queue_url(QueueName="toxic-moderation-webhooks")["QueueUrl"]
        bodies: set[str] = set()
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            bodies |= {m["Body"] for m in got}
        assert bodies == {f"delivery {i}" for i in range(6)}
