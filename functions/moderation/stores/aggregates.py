"""The aggregates table: per time bucket and model version counters, written by the stream
aggregator and read by the dashboard (a handful of Query calls, never a scan of the log).

Writes come a stream batch at a time: the batch's counters merged in memory, one update per
bucket item. Each stream shard writes its own copy of a bucket (``sk = <bucket>#<shard>``), so
no two concurrent writers touch one item; reads sum the copies. Exactly once: the same
transaction moves the shard's high-water mark (``hwm#<shard>``) from below the batch's first
sequence number to its last, so a redelivered, retried or bisected batch is refused whole
(Lambda delivers a shard's records in order, one batch at a time).

Model records (``pk = "model"``, ``sk = <version>``): one per model version the aggregator
has counted, with the bundle's thresholds and drift reference, so the dashboard reads the
aggregate table alone, and lists versions with one Query (never a scan of the markers).
"""

import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from moderation.buckets import (
    ALL_VERSIONS,
    LIFETIME,
    SHARD_KEY_END,
    all_counters,
    bucket_key,
    bucket_of,
    high_water_key,
    partition_key,
    review_queue_change,
    shard_key,
)
from moderation.errors import StoreUnavailable
from moderation.records import ReviewStatus
from moderation.stores.dynamo import TableAdapter, deserialize, projection, serialize

#: One transaction holds at most 100 actions: the high-water mark and 99 buckets.
MAX_BUCKETS_PER_WRITE = 99
#: Transactions on the same items at once cancel each other (TransactionConflict), which the
#: SDK's standard retries do not retry; each shard writes its own items, so this is rare.
CONFLICT_RETRIES = 4
MODEL_PARTITION = "model"
#: one item per community policy with counts: the dashboard's policy filter
POLICY_PARTITION = "policy"

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


class AggregateStore(TableAdapter):
    def __init__(self, table: str, client: Any | None = None) -> None:
        super().__init__(table, client)
        self._known_buckets: set[tuple[str, str]] = set()
        self._recorded_policies: set[str] = set()

    def apply_batch(
        self,
        shard_id: str,
        first_sequence: int,
        last_sequence: int,
        increments: Mapping[tuple[str, str], Mapping[str, int]],
    ) -> bool:
        """Add one batch's merged counters (``(pk, bucket) -> counter -> increment``) to the
        shard's own bucket items, in one transaction with the shard's high-water mark moving
        from below ``first_sequence`` to ``last_sequence``. False, and nothing written, when
        the mark is already at or past ``first_sequence``: the batch (or its start) was
        counted before."""
        if len(increments) > MAX_BUCKETS_PER_WRITE:
            raise ValueError(f"{len(increments)} buckets in one write; split the batch")
        keys = [(pk, shard_key(bucket, shard_id)) for pk, bucket in increments]
        self._ensure_buckets(keys)
        updates = [
            {"Update": _increment(self.table, pk, sk, counters)}
            for (pk, sk), counters in zip(keys, increments.values(), strict=True)
            if counters
        ]
        mark = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(high_water_key(shard_id)),
                "UpdateExpression": "SET last_sequence = :last, updated_at = :now",
                "ConditionExpression": "attribute_not_exists(last_sequence) "
                "OR last_sequence < :first",
                "ExpressionAttributeValues": serialize(
                    {
                        ":first": first_sequence,
                        ":last": last_sequence,
                        ":now": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                ),
            }
        }
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=[mark, *updates])
                return True
            except ClientError as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                if "TransactionConflict" in reasons and attempt < CONFLICT_RETRIES:
                    time.sleep(0.02 * 2**attempt * (1 + random.random()))
                    continue
                raise _store_error(exc) from exc
            except BotoCoreError as exc:
                raise _store_error(exc) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def review_count(self, status: ReviewStatus) -> int:
        """How many predictions wait for review (``pending``) or have been decided, from the
        lifetime counters: one Query however long the queue (the figure is as current as
        the aggregator, seconds behind the log)."""
        lifetime = self.lifetime(ALL_VERSIONS, ("review_in", "review_out", "review_removed"))
        if status == "decided":
            return lifetime["review_out"]
        return review_queue_change(lifetime)

    def high_water_mark(self, shard_id: str) -> int | None:
        """The last sequence number of the shard counted, None before its first batch."""
        try:
            response = self.client.get_item(
                TableName=self.table, Key=serialize(high_water_key(shard_id)), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc
        item = deserialize(response.get("Item") or {})
        return int(item["last_sequence"]) if "last_sequence" in item else None

    def _ensure_buckets(self, keys: list[tuple[str, str]]) -> None:
        """Create missing buckets with every counter at zero (once per container)."""
        for pk, sk in keys:
            if (pk, sk) in self._known_buckets:
                continue
            zeros = dict.fromkeys(all_counters(), 0)
            self._put_if_absent({"pk": pk, "sk": sk, **zeros})
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
                    ":b": bucket_key(end, resolution) + SHARD_KEY_END,
                }
            ),
        }
        if counters is not None:
            arguments |= projection(["sk", *counters])
        items, calls = self._query(arguments)
        return _merge_shards(items), calls

    def lifetime(self, model_version: str, counters: Sequence[str]) -> dict[str, int]:
        """Every counter since the first record of one version (or ALL); zeros when none."""
        items, _ = self._query(
            {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": serialize(
                    {":pk": partition_key(LIFETIME, model_version)}
                ),
            }
            | projection(["sk", *counters])
        )
        merged = _merge_shards(items)
        item = merged[0] if merged else {}
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

    def _put_if_absent(self, item: dict[str, Any]) -> None:
        """Write ``item`` unless its key exists (then nothing happens)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise _store_error(exc) from exc
        except BotoCoreError as exc:
            raise _store_error(exc) from exc

    def record_policy(self, policy_id: str) -> None:
        """Note that ``policy_id`` has counts (once per container; idempotent)."""
        if policy_id in self._recorded_policies:
            return
        self._put_if_absent({"pk": POLICY_PARTITION, "sk": policy_id})
        self._recorded_policies.add(policy_id)

    def policies(self) -> list[str]:
        """Policies with counts, by id: one Query on their partition."""
        items, _ = self._query(
            {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": POLICY_PARTITION}},
            }
        )
        return sorted(item["sk"] for item in items)

    def _model_query(self) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": MODEL_PARTITION}},
        }


def _increment(table: str, pk: str, sk: str, counters: Mapping[str, int]) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":v{i}": count for i, count in enumerate(counters.values())}
    return {
        "TableName": table,
        "Key": serialize({"pk": pk, "sk": sk}),
        "UpdateExpression": "ADD "
        + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialize(values),
    }


def _merge_shards(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Items of the same bucket written by different shards, summed into one per bucket (in
    bucket order), ``sk`` the bucket's key."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        bucket = bucket_of(item["sk"])
        total = merged.setdefault(bucket, {"sk": bucket})
        for name, value in item.items():
            if name not in ("pk", "sk") and isinstance(value, int | float):
                total[name] = total.get(name, 0) + value
    return [merged[bucket] for bucket in sorted(merged)]


def _version_order(version: str) -> tuple[int, str]:
    """v2 before v10; names that are not vN (``unregistered``) after every vN."""
    number = version[1:]
    return (int(number), "") if version.startswith("v") and number.isdigit() else (1 << 62, version)


def _model_record(item: Mapping[str, Any]) -> ModelRecord:
    return ModelRecord.model_validate({**item, "version": item["sk"]})
