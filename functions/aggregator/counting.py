"""What one stream record means for the aggregates. Plain functions: the handler only wires.

Besides counting, the aggregator records each model version it counts (``ModelRecorder``):
name, thresholds and the drift reference from the bundle's ``metadata.json``, so the
dashboard reads the aggregate table alone. Counting never waits on S3: when the registry
cannot be read, the version is recorded without its reference (``pending``), the counts go
ahead, and a later record of that version (after ``REFERENCE_RETRY_S``) fills it in.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from botocore.exceptions import BotoCoreError, ClientError

from moderation.buckets import feedback_counters, prediction_counters, removal_counters
from moderation.errors import BundleError, RegistryError
from moderation.log import logger
from moderation.model.bundle import BundleMetadata
from moderation.records import PredictionRecord, parse_log_item
from moderation.settings import get_settings
from moderation.stores.aggregates import AggregateStore, ModelRecord
from moderation.stores.dynamo import deserialize
from moderation.stores.registry import ModelRegistry, RegistryEntry

#: Seconds before a version whose reference could not be read from S3 is tried again.
REFERENCE_RETRY_S = 60.0


@lru_cache
def get_aggregates() -> AggregateStore:
    return AggregateStore(get_settings().aggregates_table)


@lru_cache
def get_registry() -> ModelRegistry:
    return ModelRegistry(get_settings().model_bucket)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def model_record(
    version: str,
    first_seen: datetime,
    entry: RegistryEntry | None = None,
    metadata: BundleMetadata | None = None,
    note: str | None = None,
    pending: bool = False,
) -> ModelRecord:
    """The aggregate table's record of a model version (see ``ModelRecord``)."""
    reference = metadata.reference if metadata else None
    if pending:
        status = "pending"
    else:
        status = "recorded" if reference is not None else "none"
        if metadata is not None and reference is None:
            note = "the bundle has no reference distributions"
    return ModelRecord(
        version=version,
        model_name=metadata.model_name if metadata else (entry.model_name if entry else None),
        bundle_sha256=entry.bundle_sha256 if entry else None,
        thresholds=metadata.thresholds if metadata else None,
        block_thresholds=metadata.block_thresholds if metadata else None,
        reference_status=status,
        reference_note=note,
        reference_source=reference.source if reference else None,
        reference_rows=reference.rows if reference else None,
        reference_positive_rate=reference.positive_rate if reference else None,
        reference_score_histograms=reference.score_histograms if reference else None,
        histogram_bins=reference.histogram_bins if reference else None,
        first_seen=first_seen,
    )


def fetch_model_record(registry: ModelRegistry, version: str, first_seen: datetime) -> ModelRecord:
    """A version's record from the registry: ``none`` for a version the registry does not
    have (``unregistered``, ``unknown``) or a bad bundle, ``pending`` on an S3 error."""
    try:
        entry = registry.get(version)
    except RegistryError as exc:
        if isinstance(exc.__cause__, ClientError | BotoCoreError):
            return model_record(version, first_seen, note=str(exc), pending=True)
        return model_record(version, first_seen, note=str(exc))
    except (ClientError, BotoCoreError) as exc:
        return model_record(version, first_seen, note=str(exc), pending=True)
    try:
        metadata = registry.metadata(entry)
    except (ClientError, BotoCoreError) as exc:
        note = f"s3://{registry.bucket}/{entry.prefix}: {exc}"
        return model_record(version, first_seen, entry, note=note, pending=True)
    except BundleError as exc:
        logger.error("model %s: %s; recorded without a reference", version, exc)
        return model_record(version, first_seen, entry, note=str(exc))
    return model_record(version, first_seen, entry, metadata)


class ModelRecorder:
    """Makes sure every counted model version has its record, reading S3 once per version
    (not per record): versions already final are remembered for the container's life."""

    def __init__(
        self,
        store: AggregateStore,
        registry: ModelRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.registry, self.clock = store, registry, clock
        self.final: set[str] = set()
        self.retry_at: dict[str, float] = {}

    def ensure(self, version: str, seen_at: datetime) -> None:
        """Raises ``StoreUnavailable`` when the record cannot be written (the stream record
        then fails and is retried); an S3 failure is not raised (see the module doc)."""
        if version in self.final or self.clock() < self.retry_at.get(version, 0.0):
            return
        existing = self.store.model(version)
        if existing is not None and existing.reference_status != "pending":
            self.final.add(version)
            return
        record = fetch_model_record(self.registry, version, seen_at)
        written = self.store.put_model(record)
        if written and record.reference_status == "pending":
            logger.warning(
                "model %s recorded without its reference: %s", version, record.reference_note
            )
            self.retry_at[version] = self.clock() + REFERENCE_RETRY_S
        else:
            self.final.add(version)
            self.retry_at.pop(version, None)


@lru_cache
def get_model_recorder(store: AggregateStore) -> ModelRecorder:
    """One recorder per store (per container in Lambda)."""
    return ModelRecorder(store, get_registry())


def count_record(
    record: DynamoDBRecord,
    aggregates: AggregateStore | None = None,
    models: ModelRecorder | None = None,
) -> str:
    """Count an inserted prediction or feedback item once, and the removal (TTL expiry) of a
    prediction still waiting for review; everything else changes nothing (modifies such as a
    review closing, other removes). Returns what it did."""
    if record.event_name == DynamoDBRecordEventName.INSERT:
        item = deserialize(record.raw_event["dynamodb"].get("NewImage") or {})
        logged = parse_log_item(item)
        if logged is None:
            return "ignored"
        if isinstance(logged, PredictionRecord):
            counters = prediction_counters(logged)
        else:
            counters = feedback_counters(logged)
        item_key, moment = f"{item['pk']}#{item['sk']}", parse_time(logged.created_at)
    elif record.event_name == DynamoDBRecordEventName.REMOVE:
        item = deserialize(record.raw_event["dynamodb"].get("OldImage") or {})
        logged = parse_log_item(item)
        counters = removal_counters(logged)
        if logged is None or not counters:
            return "ignored"
        removed_at = record.raw_event["dynamodb"].get("ApproximateCreationDateTime")
        moment = datetime.fromtimestamp(float(removed_at), UTC) if removed_at else datetime.now(UTC)
        item_key = f"{item['pk']}#{item['sk']}#removed"
    else:
        return "ignored"
    version = logged.model_version or "unknown"
    store = aggregates or get_aggregates()
    # The model record first: every version with counts has one (the dashboard's filter).
    (models or get_model_recorder(store)).ensure(version, moment)
    counted = store.apply(item_key, moment, version, counters)
    return "counted" if counted else "duplicate"
