"""The local stack's moto (``local/moto_server.py``, ``local/moto_state.py``) in process: the
transaction patch gives DynamoDB's results, rollback included; the response patch gives the
same JSON as moto's own serialiser; a snapshot restores tables, streams (their sequence
numbers) and objects; damaged snapshots and journal lines are recognised."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import moto_server, moto_state
from local.moto_server import patch_moto, patch_moto_transactions


@pytest.fixture
def table():
    patch_moto_transactions()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        yield client


def stream_length(client) -> int:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return len(streams.get_records(ShardIterator=iterator)["Records"])


def test_failed_transaction_rolls_back_items_and_stream(table):
    before = stream_length(table)
    add_one = {
        "TableName": "t",
        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    failing_put = {
        "TableName": "t",
        "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}},
        "ConditionExpression": "attribute_exists(pk)",
    }
    with pytest.raises(ClientError, match="TransactionCanceled"):
        table.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {"Update": add_one},
                {"Put": failing_put},
            ]
        )
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "b"}, "sk": {"S": "1"}})
    item = table.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]
    assert item["n"] == {"N": "1"}
    assert stream_length(table) == before


def test_rollback_next_to_an_empty_bucket_leaves_no_broken_item(table):
    # GIVEN moto's item map holding an empty bucket for a key (its defaultdict makes them)
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = dynamodb_backends["123456789012"]["us-east-1"]
    backend.get_table("t").items[DynamoType({"S": "ghost"})]  # noqa: B018 - creates it
    # WHEN a transaction writing that key fails and rolls back
    with pytest.raises(ClientError, match="TransactionCanceled"):
        table.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "ghost"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                         "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )  # fmt: skip
    # THEN reads that walk every item still work and see only the real one
    assert [i["pk"]["S"] for i in table.scan(TableName="t")["Items"]] == ["a"]


def test_successful_transaction_applies(table):
    table.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )
    item = table.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]
    assert item["n"] == {"N": "2"}
    assert table.scan(TableName="t", Select="COUNT")["Count"] == 2


def test_journal_reader_skips_a_damaged_line_and_a_torn_tail(tmp_path):
    # GIVEN a journal segment: two records, a damaged line between, then a record cut short
    good = moto_state.journal_entry({"REQUEST_METHOD": "PUT", "PATH_INFO": "/b"}, b"\x00\xff")
    path = tmp_path / "moto-journal-000000.jsonl"
    path.write_text(good + '{"environ": {"REQ\n' + good + '{"environ": {"REQUEST_METHOD": "PU')
    # WHEN it is read
    read = moto_state.read_journal(path)
    # THEN the whole records come back (bodies byte for byte), the others are counted
    assert len(read.entries) == 2 and read.damaged == 1 and read.torn_tail
    environ, body = moto_state.entry_request(read.entries[0])
    assert environ["REQUEST_METHOD"] == "PUT" and body == b"\x00\xff"


def test_motos_old_recording_lines_read_back_as_requests():
    line = {
        "method": "POST",
        "url": "http://127.0.0.1:5000/?a=1",
        "headers": {"X-Amz-Target": "DynamoDB_20120810.PutItem", "Host": "127.0.0.1:5000"},
        "body": '{"TableName": "t"}',
        "body_encoded": False,
    }
    environ, body = moto_state.entry_request(line)
    assert environ["REQUEST_METHOD"] == "POST" and environ["QUERY_STRING"] == "a=1"
    assert environ["HTTP_X_AMZ_TARGET"].endswith("PutItem") and body == b'{"TableName": "t"}'
    assert moto_state.is_write("POST", environ["HTTP_X_AMZ_TARGET"])
    assert not moto_state.is_write("POST", "DynamoDB_20120810.Query")
    assert not moto_state.is_write("GET", None)


def _stream_records(client, table: str) -> list[dict]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return streams.get_records(ShardIterator=iterator)["Records"]


def _put(client, table: str, i: int) -> None:
    item = {"pk": {"S": f"k{i}"}, "sk": {"S": "1"}, "n": {"N": str(i)}, "b": {"B": b"\x01"}}
    item["m"] = {"M": {"scores": {"L": [{"N": "0.5"}, {"BOOL": True}, {"NULL": True}]}}}
    client.put_item(TableName=table, Item=item)


def test_fast_json_responses_equal_motos_own(table):
    # GIVEN items with every attribute type, and their stream records
    patch_moto()
    for i in range(3):
        _put(table, "t", i)
    calls = {
        "get": lambda: table.get_item(TableName="t", Key={"pk": {"S": "k1"}, "sk": {"S": "1"}}),
        "query": lambda: table.query(
            TableName="t", KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "k2"}},
        ),
        "scan": lambda: table.scan(TableName="t"),
        "scan_count": lambda: table.scan(TableName="t", Select="COUNT"),
        "batch_get": lambda: table.batch_get_item(
            RequestItems={"t": {"Keys": [{"pk": {"S": "k0"}, "sk": {"S": "1"}}]}}
        ),
        "stream": lambda: _stream_records(table, "t"),
    }  # fmt: skip

    def answers() -> dict:
        out = {name: call() for name, call in calls.items()}
        for value in out.values():
            if isinstance(value, dict):
                value.pop("ResponseMetadata", None)
        return out

    # WHEN each read is answered by moto's serialiser and by the local fast path
    try:
        moto_server.FAST_JSON = False
        slow = answers()
    finally:
        moto_server.FAST_JSON = True
    fast = answers()
    # THEN the clients parse the same thing (stream timestamps included)
    assert fast == slow
    assert fast["get"]["Item"]["b"] == {"B": b"\x01"}


def test_a_snapshot_restores_tables_streams_and_objects(tmp_path):
    # GIVEN a table with a stream and an S3 object, snapshotted
    patch_moto()
    with mock_aws():
        client = _table_with_stream()
        for i in range(5):
            _put(client, "t", i)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="big", Body=b"x" * 6_000_000)  # spooled to disk
        before = _stream_records(client, "t")
        moto_state.flush_s3_objects()
        moto_state.write_snapshot(tmp_path, 3, {"writes": 7})
    # WHEN a fresh moto restores it
    with mock_aws():
        content = moto_state.read_snapshot(moto_state.snapshot_path(tmp_path, 3))
        moto_state.restore(content["backends"])
        client = boto3.client("dynamodb", region_name="us-east-1")
        # THEN items, stream records and their sequence numbers are back, and go on from there
        assert client.scan(TableName="t", Select="COUNT")["Count"] == 5
        assert _stream_records(client, "t") == before
        _put(client, "t", 5)
        after = _stream_records(client, "t")
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in after]
        assert numbers == list(range(numbers[0], numbers[0] + 6))
        body = boto3.client("s3", region_name="us-east-1").get_object(Bucket="models", Key="big")
        assert body["Body"].read() == b"x" * 6_000_000
        assert content["meta"] == {"writes": 7}


@pytest.mark.parametrize("damage", ["truncated", "flipped", "header", "empty"])
def test_a_damaged_snapshot_is_recognised_before_it_is_loaded(tmp_path, damage):
    patch_moto()
    with mock_aws():
        _table_with_stream()
        moto_state.write_snapshot(tmp_path, 1, {})
    path = moto_state.snapshot_path(tmp_path, 1)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    elif damage == "header":
        data[:8] = b"NOTASNAP"
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(moto_state.SnapshotError):
        moto_state.read_snapshot(path)


def _table_with_stream():
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client


def test_journal_lines_are_json_with_the_request_as_served():
    line = moto_state.journal_entry(
        {"REQUEST_METHOD": "POST", "wsgi.input": object(), "moto.preserved_header_names": {}},
        b'{"a": 1}',
    )
    assert json.loads(line) == {"environ": {"REQUEST_METHOD": "POST"}, "body": '{"a": 1}',
                                "b64": False}  # fmt: skip
