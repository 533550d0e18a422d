"""The aggregates table: per time bucket and model version counters, written by the stream
aggregator and read by the dashboard (a handful of Query calls, never a scan of the log).

Exactly-once effect: every counted log item leaves a marker keyed by the item's own key
(``seen#<request_id>#<sk>``) in the same transaction as its counter updates. A redelivered
or retried record finds its marker and changes nothing.

Model records (``pk = "model"``, ``sk = <version>``): one per model version the aggregator
has counted, with the bundle's thresholds and drift reference, so the dashboard reads the
aggregate table alone, and lists versions with one Query (never a scan of the markers).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from moderation.buckets import (
    LIFETIME,
    LIFETIME_BUCKET,
    all_counters,
    bucket_key,
    bucket_keys,
    marker_key,
    partition_key,
)
from moderation.errors import StoreUnavailable
from moderation.stores.dynamo import RETRY_CONFIG, deserialize, projection, serialize

MARKER_TTL_DAYS = 7
MODEL_PARTITION = "model"

#: ``recorded``: the bundle's reference is in the record; ``none``: there is none to have (no
#: registry entry, e.g. ``unregistered``, or a bundle without one); ``pending``: the registry
#: could not be read, the aggregator fills the reference in on a later record.
ReferenceStatus = Literal["recorded", "none", "pending"]


class ModelRecord(BaseModel):
    """What the dashboard knows about a model version: its thresholds and drift baseline."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    model_name: str | None = None
    bundle_sha256: str | None = None
    thresholds: dict[str, float] | None = None
    block_thresholds: dict[str, float] | None = None
    reference_status: ReferenceStatus
    reference_note: str | None = None
    reference_source: str | None = None
    reference_rows: int | None = None
    reference_positive_rate: dict[str, float] | None = None
    reference_score_histograms: dict[str, list[int]] | None = None
    histogram_bins: list[float] | None = None
    first_seen: datetime

    @property
    def has_reference(self) -> bool:
        return self.reference_status == "recorded" and bool(self.reference_score_histograms)


def _store_error(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"aggregate store unavailable ({exc})")


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
        keys = bucket_keys(moment, model_version)
        self._ensure_buckets(keys)
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values = {f":v{i}": count for i, count in enumerate(counters.values())}
        expression = "ADD " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True))
        updates = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"pk": pk, "sk": sk}),
                    "UpdateExpression": expression,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            }
            for pk, sk in keys
        ]
        expires = int((datetime.now(moment.tzinfo) + timedelta(days=MARKER_TTL_DAYS)).timestamp())
        marker = {
            "Put": {
                "TableName": self.table,
                "Item": serialize({**marker_key(item_key), "expires_at": expires}),
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
            raise _store_error(exc) from exc
        except BotoCoreError as exc:
            raise _store_error(exc) from exc

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
                    raise _store_error(exc) from exc
            except BotoCoreError as exc:
                raise _store_error(exc) from exc
            self._known_buckets.add((pk, sk))

    def read(
        self,
        resolution: str,
        model_version: str,
        start: datetime,
        end: datetime,
        counters: Sequence[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Buckets in [start, end] for one version (or ALL), oldest first, and the number of
        Query calls it took. ``counters`` limits what each bucket brings back (with its
        ``sk``): DynamoDB bills the whole item either way, but every attribute left out is
        one less to serialise and parse."""
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
        if counters is not None:
            arguments |= projection(["sk", *counters])
        return self._query(arguments)

    def lifetime(self, model_version: str, counters: Sequence[str]) -> dict[str, int]:
        """Every counter since the first record of one version (or ALL); zeros when none."""
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key=serialize(
                    {"pk": partition_key(LIFETIME, model_version), "sk": LIFETIME_BUCKET}
                ),
                **projection(counters),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc
        item = deserialize(response.get("Item") or {})
        return {name: int(item.get(name, 0)) for name in counters}

    def _query(self, arguments: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        items: list[dict[str, Any]] = []
        calls = 0
        while True:
            try:
                response = self.client.query(**arguments)
            except (ClientError, BotoCoreError) as exc:
                raise _store_error(exc) from exc
            calls += 1
            items.extend(deserialize(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items, calls
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # model records
    def put_model(self, record: ModelRecord) -> bool:
        """Write a version's record unless a final one (``recorded`` or ``none``) is there:
        idempotent, and a ``pending`` record is completed by a later call. ``first_seen``
        keeps its first value. False when a final record was already there."""
        fields = record.model_dump(
            mode="json", exclude={"version", "first_seen"}, exclude_none=True
        )
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        assignments = [f"{n} = {v}" for n, v in zip(names, values, strict=True)]
        # fields a pending record had and a final one must not keep
        stale = sorted(set(ModelRecord.model_fields) - set(fields) - {"version", "first_seen"})
        removals = {f"#r{i}": name for i, name in enumerate(stale)}
        expression = "SET " + ", ".join([*assignments, "#fs = if_not_exists(#fs, :fs)"])
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        try:
            self.client.update_item(
                TableName=self.table,
                Key=serialize({"pk": MODEL_PARTITION, "sk": record.version}),
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(pk) OR #st = :pending",
                ExpressionAttributeNames={
                    **names,
                    **removals,
                    "#fs": "first_seen",
                    "#st": "reference_status",
                },
                ExpressionAttributeValues=serialize(
                    {**values, ":fs": record.first_seen.isoformat(), ":pending": "pending"}
                ),
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _store_error(exc) from exc
        except BotoCoreError as exc:
            raise _store_error(exc) from exc

    def model(self, version: str) -> ModelRecord | None:
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key=serialize({"pk": MODEL_PARTITION, "sk": version}),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc
        item = response.get("Item")
        return _model_record(deserialize(item)) if item else None

    def models(self) -> list[ModelRecord]:
        """Every recorded model version, v1, v2, ... then any other names."""
        items, _ = self._query(self._model_query())
        return sorted(
            (_model_record(item) for item in items), key=lambda m: _version_order(m.version)
        )

    def versions(self) -> list[str]:
        """Model versions the aggregator has counted (the dashboard's version filter): one
        Query on the model partition, however many markers and buckets the table holds."""
        items, _ = self._query(self._model_query() | projection(["sk"]))
        return sorted((item["sk"] for item in items), key=_version_order)

    def _model_query(self) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": MODEL_PARTITION}},
        }


def _version_order(version: str) -> tuple[int, str]:
    """v2 before v10; names that are not vN (``unregistered``) after every vN."""
    number = version[1:]
    return (int(number), "") if version.startswith("v") and number.isdigit() else (1 << 62, version)


def _model_record(item: Mapping[str, Any]) -> ModelRecord:
    return ModelRecord.model_validate({**item, "version": item["sk"]})
