"""The local stack's moto transaction patch: same results as DynamoDB, rollback included."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.moto_server import compact_recording, patch_moto_transactions


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


def test_recording_compaction_keeps_only_writes(tmp_path):
    import json

    lines = [
        {"method": "PUT", "headers": {}},
        {"method": "GET", "headers": {}},
        {"method": "POST", "headers": {"X-Amz-Target": "DynamoDB_20120810.PutItem"}},
        {"method": "POST", "headers": {"X-Amz-Target": "DynamoDB_20120810.Query"}},
        {"method": "POST", "headers": {"X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"}},
    ]
    recording = tmp_path / "rec.jsonl"
    recording.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert compact_recording(recording) == (5, 2)
    kept = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [k["method"] for k in kept] == ["PUT", "POST"]


def test_compaction_recovers_interleaved_records_and_drops_a_torn_one(tmp_path):
    import json

    put = {"method": "PUT", "headers": {}}
    item = {"method": "POST", "headers": {"X-Amz-Target": "DynamoDB_20120810.PutItem"}}
    recording = tmp_path / "rec.jsonl"
    # two records written onto one line, then a record cut short by a crash
    recording.write_text(json.dumps(put) + json.dumps(item) + "\n" + '{"method": "PU')
    assert compact_recording(recording) == (2, 2)
    assert [json.loads(x)["method"] for x in recording.read_text().splitlines()] == ["PUT", "POST"]
