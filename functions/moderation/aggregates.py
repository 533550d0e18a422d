"""The aggregate tables: per time bucket and model version counters, written by the stream
aggregator and read by the dashboard (a handful of Query calls, never a scan of the log).

Exactly-once effect: every counted log item leaves a marker keyed by the item's own key
(``seen#<request_id>#<sk>``) in the same transaction as its counter updates. A redelivered
or retried record finds its marker and changes nothing.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from moderation.aggregation import (
    ALL_VERSIONS,
    RESOLUTIONS,
    all_counters,
    bucket_key,
    partition_key,
)
from moderation.errors import StoreUnavailable
from moderation.store import RETRY_CONFIG, deserialize, serialize

MARKER_TTL_DAYS = 7


class AggregateStore:
    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = table
        self._client = client
        self._known_buckets: set[tuple[str, str]] = set()

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("dynamodb", config=RETRY_CONFIG)

    def apply(
        self, item_key: str, moment: datetime, model_version: str, counters: Mapping[str, int]
    ) -> bool:
        """Count one log item once: False when it had already been counted."""
        keys = [
            (partition_key(resolution, version), bucket_key(moment, resolution))
            for resolution in RESOLUTIONS
            for version in (model_version, ALL_VERSIONS)
        ]
        self._ensure_buckets(keys)
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values = {f":v{i}": count for i, count in enumerate(counters.values())}
        expression = "ADD " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True))
        updates = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(
                        {
                            "pk": partition_key(resolution, version),
                            "sk": bucket_key(moment, resolution),
                        }
                    ),
                    "UpdateExpression": expression,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            }
            for resolution in RESOLUTIONS
            for version in (model_version, ALL_VERSIONS)
        ]
        expires = int((datetime.now(moment.tzinfo) + timedelta(days=MARKER_TTL_DAYS)).timestamp())
        marker = {
            "Put": {
                "TableName": self.table,
                "Item": serialize({"pk": f"seen#{item_key}", "sk": "-", "expires_at": expires}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        try:
            self.client.transact_write_items(TransactItems=[marker, *updates])
            return True
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise StoreUnavailable(f"aggregate store unavailable ({exc})") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"aggregate store unavailable ({exc})") from exc

    def _ensure_buckets(self, keys: list[tuple[str, str]]) -> None:
        """Create missing buckets with every counter at zero (once per container)."""
        for pk, sk in keys:
            if (pk, sk) in self._known_buckets:
                continue
            zeros = dict.fromkeys(all_counters(), 0)
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=serialize({"pk": pk, "sk": sk, **zeros}),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise StoreUnavailable(f"aggregate store unavailable ({exc})") from exc
            except BotoCoreError as exc:
                raise StoreUnavailable(f"aggregate store unavailable ({exc})") from exc
            self._known_buckets.add((pk, sk))

    def read(
        self, resolution: str, model_version: str, start: datetime, end: datetime
    ) -> tuple[list[dict[str, Any]], int]:
        """Buckets in [start, end] for one version (or ALL), oldest first, and the number of
        Query calls it took."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": serialize(
                {
                    ":pk": partition_key(resolution, model_version),
                    ":a": bucket_key(start, resolution),
                    ":b": bucket_key(end, resolution),
                }
            ),
        }
        items: list[dict[str, Any]] = []
        calls = 0
        while True:
            response = self.client.query(**arguments)
            calls += 1
            items.extend(deserialize(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items, calls
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def versions(self) -> list[str]:
        """Model versions that have hourly buckets (the dashboard's version filter)."""
        found: set[str] = set()
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk",
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": "hour#"}},
        }
        while True:
            response = self.client.scan(**arguments)
            found.update(deserialize(i)["pk"].split("#", 1)[1] for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(found - {ALL_VERSIONS})
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
