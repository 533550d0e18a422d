"""What every DynamoDB adapter shares: the client's retry policy, the one-table adapter base,
and the conversion between Python values and DynamoDB's typed attribute values."""

from collections.abc import Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5
)


class TableAdapter:
    """A store over one DynamoDB table: the client is given (tests: moto or a fault
    injector) or created on first use with the shared retry policy."""

    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = table
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("dynamodb", config=RETRY_CONFIG)


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(round(value, 6)))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in _to_dynamo(item).items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return _from_dynamo({k: _deserializer.deserialize(v) for k, v in item.items()})


def projection(attributes: Sequence[str]) -> dict[str, Any]:
    """``ProjectionExpression`` arguments that bring back only ``attributes``."""
    names = {f"#p{i}": name for i, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
