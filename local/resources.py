"""Create the tables and buckets of ``template.yaml`` (the single schema) through boto3.

Used by the tests and the local stack; never by the Lambdas at run time.
"""

from pathlib import Path
from typing import Any

import boto3
import yaml

from moderation.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (``!Ref``...) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (safe loader subclass)


def physical_names(settings: Settings) -> dict[str, str]:
    """Logical id in the template -> the name the settings give it (local/test stacks)."""
    return {
        "PredictionsTable": settings.predictions_table,
        "CacheTable": settings.cache_table,
        "AggregatesTable": settings.aggregates_table,
        "PoliciesTable": settings.policies_table,
        "AuditTable": settings.audit_table,
        "ModelBucket": settings.model_bucket,
    }


#: The template's queues that the local stack runs (the webhooks' queue and dead letters), by
#: logical id: the local webhook runner and the re-drive find them by these names.
QUEUE_NAMES = {
    "WebhookQueue": "toxic-moderation-webhooks",
    "WebhookDeadLetterQueue": "toxic-moderation-webhooks-dlq",
}


def table_arguments(properties: dict[str, Any], name: str) -> dict[str, Any]:
    """boto3 ``create_table`` arguments from a template table's Properties."""
    arguments: dict[str, Any] = {
        "TableName": name,
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
        }
    return arguments


def create_resources(
    settings: Settings, dynamodb: Any = None, s3: Any = None, sqs: Any = None
) -> list[str]:
    """Create every table and bucket of the template that does not exist yet, and the
    queues of ``QUEUE_NAMES`` (creating an existing queue again is a no-op)."""
    dynamodb = dynamodb or boto3.client("dynamodb")
    s3 = s3 or boto3.client("s3")
    sqs = sqs or boto3.client("sqs")
    names = physical_names(settings)
    created = []
    existing_tables = set(dynamodb.list_tables()["TableNames"])
    existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for logical_id, resource in load_template()["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            name = names[logical_id]
            if name in existing_tables:
                continue
            dynamodb.create_table(**table_arguments(properties, name))
            ttl = properties.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
            created.append(name)
        elif kind == "AWS::SQS::Queue" and logical_id in QUEUE_NAMES:
            sqs.create_queue(QueueName=QUEUE_NAMES[logical_id])
        elif kind == "AWS::S3::Bucket":
            name = names[logical_id]
            if name not in existing_buckets:
                s3.create_bucket(Bucket=name)
                if properties.get("VersioningConfiguration"):
                    s3.put_bucket_versioning(
                        Bucket=name, VersioningConfiguration={"Status": "Enabled"}
                    )
                created.append(name)
    return created
