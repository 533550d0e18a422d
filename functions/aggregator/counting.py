"""What a stream batch means for the aggregates, counted once. Plain functions: the handler
only wires.

A batch is one shard's records in sequence order (Lambda's guarantee, ParallelizationFactor 1;
the shard id comes in the event, which the tumbling window configured in template.yaml
adds). Its counters are merged in memory and written with one transaction per run of records
that fits one (``AggregateStore.apply_batch``), each moving the shard's high-water mark, so a
redelivered, retried, bisected or timed-out-but-landed batch counts once.

Besides counting, the aggregator records each model version it counts (``ModelRecorder``):
name, thresholds and the drift reference from the bundle's ``metadata.json``, so the
dashboard reads the aggregate table alone. Counting never waits on S3: when the registry
cannot be read, the version is recorded without its reference (``pending``), the counts go
ahead, and a later record of that version (after ``REFERENCE_RETRY_S``) fills it in.
"""

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from botocore.exceptions import BotoCoreError, ClientError

from moderation.buckets import (
    bucket_keys,
    feedback_counters,
    prediction_counters,
    removal_counters,
)
from moderation.errors import BundleError, RegistryError, StoreUnavailable
from moderation.log import logger
from moderation.model.bundle import BundleMetadata
from moderation.records import PredictionRecord, parse_log_item
from moderation.settings import get_settings
from moderation.stores.aggregates import MAX_BUCKETS_PER_WRITE, AggregateStore, ModelRecord
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


class DeadLetters:
    """Stream records that cannot be counted, sent whole to the dead-letter queue (where
    Lambda's own on-failure records also land), so nothing is dropped silently and
    ``aggregator.redrive`` can count them once they are fixable."""

    def __init__(self, queue_url: str | None, client: Any | None = None) -> None:
        self.queue_url, self._client = queue_url, client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("sqs")

    def send(self, record: dict[str, Any], reason: str) -> None:
        logger.error("dead-lettering stream record %s: %s", record.get("eventID"), reason)
        if not self.queue_url:
            raise StoreUnavailable("no DEAD_LETTER_QUEUE_URL for a record that cannot be counted")
        body = {"deadLetteredRecord": record, "reason": reason}
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))


@lru_cache
def get_dead_letters() -> DeadLetters:
    return DeadLetters(get_settings().dead_letter_queue_url)


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


@dataclass(frozen=True)
class Counted:
    """What one stream record adds, and where: its counters at a moment, for a version."""

    sequence: int
    moment: datetime
    version: str
    counters: dict[str, int]
    policy_id: str | None = None


@dataclass
class BatchOutcome:
    counted: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    #: sequence number of the first record to retry (Lambda's partial batch response)
    retry_from: str | None = None

    def response(self) -> dict[str, Any]:
        failures = [{"itemIdentifier": self.retry_from}] if self.retry_from else []
        return {"batchItemFailures": failures}


def record_counters(raw: dict[str, Any]) -> Counted | None:
    """What one stream record means for the aggregates: an inserted prediction or feedback,
    or the removal (TTL expiry) of a prediction still waiting for review; None for anything
    else (modifies such as a review closing, other removes). Raises ``ValueError`` (or
    pydantic's ``ValidationError``, a subclass) for a record that is not a log item."""
    record = DynamoDBRecord(raw)
    sequence = int(raw["dynamodb"]["SequenceNumber"])
    if record.event_name == DynamoDBRecordEventName.INSERT:
        logged = parse_log_item(deserialize(raw["dynamodb"].get("NewImage") or {}))
        if logged is None:
            return None
        if isinstance(logged, PredictionRecord):
            counters = prediction_counters(logged)
        else:
            counters = feedback_counters(logged)
        moment = parse_time(logged.created_at)
    elif record.event_name == DynamoDBRecordEventName.REMOVE:
        logged = parse_log_item(deserialize(raw["dynamodb"].get("OldImage") or {}))
        counters = removal_counters(logged)
        if logged is None or not counters:
            return None
        removed_at = raw["dynamodb"].get("ApproximateCreationDateTime")
        moment = datetime.fromtimestamp(float(removed_at), UTC) if removed_at else datetime.now(UTC)
    else:
        return None
    return Counted(sequence, moment, logged.model_version or "unknown", counters, logged.policy_id)


def merge(counted: Sequence[Counted]) -> dict[tuple[str, str], Counter[str]]:
    """The batch's increments per bucket: one update per bucket item, however many records."""
    merged: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for item in counted:
        for key in bucket_keys(item.moment, item.version, item.policy_id):
            merged[key].update(item.counters)
    return merged


def _chunks(counted: list[Counted]) -> list[list[Counted]]:
    """Consecutive runs of records whose buckets fit one transaction."""
    chunks: list[list[Counted]] = [[]]
    buckets: set[tuple[str, str]] = set()
    for item in counted:
        keys = set(bucket_keys(item.moment, item.version, item.policy_id))
        if chunks[-1] and len(buckets | keys) > MAX_BUCKETS_PER_WRITE:
            chunks.append([])
            buckets = set()
        chunks[-1].append(item)
        buckets |= keys
    return [chunk for chunk in chunks if chunk]


def count_batch(
    event: dict[str, Any],
    aggregates: AggregateStore | None = None,
    models: ModelRecorder | None = None,
    dead_letters: DeadLetters | None = None,
) -> BatchOutcome:
    """Count one stream batch of one shard exactly once: records merged in memory, one
    transactional write per run of records that fits one transaction, each moving the
    shard's high-water mark (see ``AggregateStore.apply_batch``). A record that is not a log
    item goes whole to the dead-letter queue; a write that fails is retried by Lambda from
    the first record it held (the partial batch response)."""
    store = aggregates or get_aggregates()
    shard = event["shardId"]
    outcome = BatchOutcome()
    counted: list[Counted] = []
    for raw in sorted(
        event.get("Records") or [], key=lambda r: int(r["dynamodb"]["SequenceNumber"])
    ):
        try:
            item = record_counters(raw)
        except (ValueError, KeyError, TypeError) as exc:
            (dead_letters or get_dead_letters()).send(raw, f"{type(exc).__name__}: {exc}")
            outcome.dead_lettered += 1
            continue
        if item is None:
            outcome.ignored += 1
        else:
            counted.append(item)
    recorder = models or get_model_recorder(store)
    for version, moment in {c.version: c.moment for c in counted}.items():
        # the model record first: every version with counts has one (the dashboard's filter)
        recorder.ensure(version, moment)
    for policy_id in {c.policy_id for c in counted} - {None}:
        # the dashboard's policy filter lists the policies with counts
        store.record_policy(policy_id)
    for chunk in _chunks(counted):
        try:
            _apply_once(store, shard, chunk, outcome)
        except StoreUnavailable:
            outcome.retry_from = str(chunk[0].sequence)
            logger.warning("aggregates unavailable; Lambda retries from %s", outcome.retry_from)
            break
    return outcome


def _apply_once(
    store: AggregateStore, shard: str, chunk: list[Counted], outcome: BatchOutcome
) -> None:
    """Write a run of records, less any the shard's high-water mark says were counted."""
    if store.apply_batch(shard, chunk[0].sequence, chunk[-1].sequence, merge(chunk)):
        outcome.counted += len(chunk)
        return
    mark = store.high_water_mark(shard) or 0
    rest = [item for item in chunk if item.sequence > mark]
    outcome.duplicates += len(chunk) - len(rest)
    if rest and store.apply_batch(shard, rest[0].sequence, rest[-1].sequence, merge(rest)):
        outcome.counted += len(rest)
    elif rest:  # another writer of this shard moved the mark meanwhile: Lambda never does
        raise StoreUnavailable(f"shard {shard} high-water mark moved during the batch")
