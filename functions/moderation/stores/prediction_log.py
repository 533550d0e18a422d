"""The prediction log in DynamoDB: predictions, feedback, the review queue and the score cache.

It speaks DynamoDB and turns ``ClientError`` into domain errors. boto3's standard retry mode
absorbs throttling; what still fails is ``StoreUnavailable``, and the API answers 503 with
nothing half-written, because every multi-item write is one transaction.
"""

import base64
import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from moderation.errors import Conflict, InvalidCursor, NotFound, StoreUnavailable
from moderation.records import (
    FEEDBACK_SK_PREFIX,
    REVIEW_SHARDS,
    TRAFFIC_SAMPLE_SHARDS,
    AuditRecord,
    FeedbackRecord,
    PredictionRecord,
    ReviewDecision,
    ReviewStatus,
    SampledPrediction,
    feedback_key,
    label_lane,
    lane_keys,
    policy_lane,
    prediction_key,
    review_queue_key,
)
from moderation.stores.audit import audit_put
from moderation.stores.dynamo import RETRY_CONFIG, deserialize, projection, serialize

REVIEW_INDEX = "review-queue-sharded"
PRIORITY_INDEX = "review-priority"
LABEL_INDEX = "review-by-label"
POLICY_INDEX = "review-by-policy"
TRAFFIC_SAMPLE_INDEX = "traffic-sample"
EXHAUSTED = "done"
#: (cache key, scores, expiry as epoch seconds): a newly scored comment
CacheWrite = tuple[str, list[float], int]
#: BatchWriteItem's limit, and how often its unprocessed items are sent again
_BATCH_WRITE_ITEMS = 25
_BATCH_WRITE_ATTEMPTS = 3


#: a lease condition: none, expired, or the caller's own (``:me``, ``:now``)
_LEASE_FREE = (
    "(attribute_not_exists(lease_expires_at) OR lease_expires_at <= :now OR lease_holder = :me)"
)


def index_hash_key(index: str) -> str:
    return {
        REVIEW_INDEX: "review_queue",
        PRIORITY_INDEX: "review_queue",
        LABEL_INDEX: "review_label_queue",
        POLICY_INDEX: "review_policy_queue",
    }[index]


@dataclass(frozen=True)
class QueueView:
    """Which review items, in which order, and through which index.

    ``priority`` order (the default) reads the ``review-priority`` index, whose sort key is
    ``records.review_priority``; ``oldest`` reads ``review-queue-sharded`` (by created_at).
    A ``label`` reads that label's lane (``review-by-label``: items whose most severe
    flagged label it is), a ``policy`` that policy's lane (``review-by-policy``); both
    together read the policy's lane, filtered to the label. With ``moderator``, items
    another moderator holds under a running lease are left out."""

    order: Literal["priority", "oldest"] = "priority"
    label: str | None = None
    policy: str | None = None
    moderator: str | None = None
    now: int = 0

    def partitions(self, status: ReviewStatus) -> tuple[str, str, list[str]]:
        """(index, its sort key, the partitions to merge)."""
        shards = range(REVIEW_SHARDS)
        if self.policy:
            return POLICY_INDEX, "review_priority", [policy_lane(self.policy, s) for s in shards]
        if self.label:
            return LABEL_INDEX, "review_priority", [label_lane(self.label, s) for s in shards]
        if self.order == "oldest":
            return REVIEW_INDEX, "created_at", [f"{status}#{s}" for s in shards]
        return PRIORITY_INDEX, "review_priority", [f"{status}#{s}" for s in shards]

    def filter(self, shard: int) -> tuple[str | None, dict[str, Any]]:
        """The query's FilterExpression for one shard (None: none) and its values."""
        conditions, values = [], {}
        if self.policy and self.label:
            conditions.append("review_label_queue = :lane")
            values[":lane"] = {"S": label_lane(self.label, shard)}
        if self.moderator:
            conditions.append(_LEASE_FREE)
            values |= {":me": {"S": self.moderator}, ":now": {"N": str(self.now)}}
        return (" AND ".join(conditions) or None), values


class DuplicateRequest(Exception):
    """Some predictions of a write already exist: an idempotent retry (see ``log``)."""


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"prediction store unavailable ({type(exc).__name__})")


class PredictionLog:
    def __init__(self, predictions_table: str, cache_table: str, client: Any | None = None) -> None:
        self.predictions_table = predictions_table
        self.cache_table = cache_table
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("dynamodb", config=RETRY_CONFIG)

    def ping(self) -> bool:
        try:
            self.client.describe_table(TableName=self.predictions_table)
            return True
        except (ClientError, BotoCoreError):
            return False

    # the score cache
    def _batch_get(
        self, table: str, keys: Sequence[dict[str, Any]], **options: Any
    ) -> list[dict[str, Any]]:
        """Every item of ``keys`` that exists, 100 keys a call, unprocessed keys retried."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request = {table: {"Keys": list(keys[start : start + 100]), **options}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items += [deserialize(raw) for raw in response["Responses"].get(table, [])]
                request = response.get("UnprocessedKeys") or None
        return items

    def cached_scores(self, cache_keys: Sequence[str]) -> dict[str, list[float]]:
        """Scores held for these cache keys (hash#model_version); a miss is simply absent.

        A cache that cannot be read is treated as empty: the model can always answer."""
        keys = [{"cache_key": {"S": key}} for key in dict.fromkeys(cache_keys)]
        try:
            items = self._batch_get(
                self.cache_table, keys, ProjectionExpression="cache_key, scores"
            )
        except (ClientError, BotoCoreError):
            return {}
        return {item["cache_key"]: [float(x) for x in item["scores"]] for item in items}

    def _cache_scores(self, cache_writes: Sequence[CacheWrite]) -> None:
        """Newly scored comments into the cache, 25 a call (a cache hit writes nothing: the
        aggregates count hits). Best-effort: the cache is an optimisation, never a record."""
        requests = [
            {"PutRequest": {"Item": serialize({"cache_key": k, "scores": s, "expires_at": e})}}
            for k, s, e in cache_writes
        ]
        for start in range(0, len(requests), _BATCH_WRITE_ITEMS):
            pending = {self.cache_table: requests[start : start + _BATCH_WRITE_ITEMS]}
            try:
                for _ in range(_BATCH_WRITE_ATTEMPTS):
                    response = self.client.batch_write_item(RequestItems=pending)
                    pending = response.get("UnprocessedItems") or {}
                    if not pending:
                        break
            except (ClientError, BotoCoreError):
                return  # the store is struggling: skip the cache rather than slow the caller

    # the prediction log
    def log(
        self, predictions: Sequence[PredictionRecord], cache_writes: Sequence[CacheWrite] = ()
    ) -> None:
        """Write predictions atomically: all of them or none.

        Each prediction is a conditional put on a new request id, so a retried request with
        the same ``Idempotency-Key`` (same ids) raises ``DuplicateRequest`` and writes nothing.
        One prediction is a single conditional PutItem (atomic by itself, half the cost of a
        transaction); a batch is one transaction. Newly scored comments then go to the cache
        (``_cache_scores``).
        """
        puts = [
            {
                "TableName": self.predictions_table,
                "Item": serialize(p.item()),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
            for p in predictions
        ]
        try:
            if len(puts) == 1:
                self.client.put_item(**puts[0])
            else:
                self.client.transact_write_items(TransactItems=[{"Put": put} for put in puts])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            reasons = exc.response.get("CancellationReasons") or []
            if code == "ConditionalCheckFailedException" or any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                raise DuplicateRequest from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        self._cache_scores(cache_writes)

    def get_predictions(self, request_ids: Sequence[str]) -> dict[str, PredictionRecord]:
        keys = [serialize(prediction_key(rid)) for rid in request_ids]
        try:
            items = self._batch_get(self.predictions_table, keys, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        return {item["request_id"]: PredictionRecord.model_validate(item) for item in items}

    def get_prediction(self, request_id: str) -> PredictionRecord:
        item = self.get_predictions([request_id]).get(request_id)
        if item is None:
            raise NotFound(f"no prediction with request_id {request_id}")
        return item

    # feedback and reviews
    def add_feedback(self, feedback: FeedbackRecord) -> bool:
        """Record feedback once per (prediction, source); True when newly written.

        The caller has read the prediction (unknown ids are ``NotFound`` there). The same
        feedback again is a no-op (False); different feedback from the same source is a
        ``Conflict``."""
        try:
            self.client.put_item(
                TableName=self.predictions_table,
                Item=serialize(feedback.item()),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return self._same_feedback(feedback)
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def _same_feedback(self, feedback: FeedbackRecord) -> bool:
        existing = self.client.get_item(
            TableName=self.predictions_table,
            Key=serialize(feedback.key()),
            ConsistentRead=True,
        ).get("Item")
        if existing and deserialize(existing).get("fingerprint") == feedback.fingerprint:
            return False
        raise Conflict(f"different feedback from {feedback.source} is already recorded")

    def feedback_for(self, request_id: str) -> list[FeedbackRecord]:
        """Every piece of feedback a prediction got, one per source."""
        try:
            response = self.client.query(
                TableName=self.predictions_table,
                KeyConditionExpression="pk = :id AND begins_with(sk, :fb)",
                ExpressionAttributeValues=serialize({":id": request_id, ":fb": FEEDBACK_SK_PREFIX}),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        return [FeedbackRecord.model_validate(deserialize(i)) for i in response.get("Items", [])]

    def reviews(
        self,
        status: ReviewStatus,
        limit: int,
        cursor: str | None = None,
        queue: QueueView | None = None,
    ) -> tuple[list[PredictionRecord], str | None]:
        """Review items with ``status`` in the view's order, and an opaque cursor for the next
        page (see ``QueueView`` for the order, the filters and the indexes behind them).

        Each index has ``REVIEW_SHARDS`` partitions per key: each is read from where the
        cursor left it (``limit`` items, already in order), the pages are merged, and the
        cursor keeps each partition's position (or that it is exhausted)."""
        queue = queue or QueueView(order="oldest")
        index, sort_key, partitions = queue.partitions(status)
        attributes = (index_hash_key(index), sort_key, "pk", "sk")
        positions = _decode_cursor(cursor, attributes) if cursor else {}
        per_shard: list[list[tuple[int, dict[str, Any]]]] = []
        last_key: dict[int, dict[str, Any] | None] = {}
        for shard, partition in enumerate(partitions):
            position = positions.get(str(shard))
            if position == EXHAUSTED:
                continue
            condition, values = queue.filter(shard)
            arguments: dict[str, Any] = {
                "TableName": self.predictions_table,
                "IndexName": index,
                "KeyConditionExpression": f"{attributes[0]} = :q",
                "ExpressionAttributeValues": {":q": {"S": partition}, **values},
                "ScanIndexForward": True,
                "Limit": limit,
            }
            if condition:
                arguments["FilterExpression"] = condition
            if position:
                arguments["ExclusiveStartKey"] = position
            try:
                response = self.client.query(**arguments)
            except ClientError as exc:
                if cursor and exc.response["Error"]["Code"] == "ValidationException":
                    raise InvalidCursor("is not a cursor this API issued") from exc
                raise _unavailable(exc) from exc
            except BotoCoreError as exc:
                raise _unavailable(exc) from exc
            per_shard.append([(shard, item) for item in response.get("Items", [])])
            last_key[shard] = response.get("LastEvaluatedKey")
        # a merge keeps each shard's own order, so what a page takes of a shard is a prefix
        # of what the shard returned and its position is the last item taken
        found = list(heapq.merge(*per_shard, key=lambda pair: pair[1][sort_key]["S"]))
        page = found[:limit]
        taken = dict(page)  # shard -> the last item taken from it
        left = {shard for shard, _ in found[limit:]}
        next_positions = dict(positions)
        for shard, evaluated in last_key.items():
            if shard in left:
                item = taken.get(shard)
                if item is not None:
                    next_positions[str(shard)] = {k: item[k] for k in attributes}
            elif evaluated:
                # all it returned was taken (or filtered out): go on after what it read
                next_positions[str(shard)] = evaluated
            else:
                next_positions[str(shard)] = EXHAUSTED
        done = all(next_positions.get(str(s)) == EXHAUSTED for s in range(len(partitions)))
        next_cursor = None if done else _encode_cursor(next_positions)
        items = [PredictionRecord.model_validate(deserialize(item)) for _, item in page]
        return items, next_cursor

    def oldest_pending(self) -> str | None:
        """When the longest-waiting pending item was logged: one item read per shard."""
        oldest: list[str] = []
        for shard in range(REVIEW_SHARDS):
            try:
                response = self.client.query(
                    TableName=self.predictions_table,
                    IndexName=REVIEW_INDEX,
                    KeyConditionExpression="review_queue = :q",
                    ExpressionAttributeValues={":q": {"S": f"pending#{shard}"}},
                    Limit=1,
                    **projection(["created_at"]),
                )
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc) from exc
            oldest += [item["created_at"]["S"] for item in response.get("Items", [])]
        return min(oldest, default=None)

    def _transact(self, request_id: str, items: list[dict[str, Any]]) -> bool:
        """Run a review transaction; False when its first item's condition failed (the
        caller then reads the item to say why), ``StoreUnavailable`` for anything else."""
        try:
            self.client.transact_write_items(TransactItems=items)
            return True
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if "ConditionalCheckFailed" in reasons:  # feedback or audit line already there
                raise Conflict(f"{request_id} changed meanwhile; read it again") from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def _current(self, request_id: str) -> PredictionRecord:
        item = self.get_predictions([request_id]).get(request_id)
        if item is None:
            raise NotFound(f"no prediction with request_id {request_id}")
        return item

    def claim(self, request_id: str, audit: AuditRecord, audit_table: str, now: int) -> None:
        """Lease a pending item to ``audit.moderator`` until ``audit.lease_expires_at``:
        refused (``Conflict``) while another moderator's lease runs; their own is renewed."""
        update = {
            "Update": {
                "TableName": self.predictions_table,
                "Key": serialize(prediction_key(request_id)),
                "UpdateExpression": "SET lease_holder = :me, lease_expires_at = :until",
                "ConditionExpression": f"review_status = :pending AND {_LEASE_FREE}",
                "ExpressionAttributeValues": serialize(
                    {
                        ":me": audit.moderator,
                        ":until": audit.lease_expires_at,
                        ":pending": "pending",
                        ":now": now,
                    }
                ),
            }
        }
        if not self._transact(request_id, [update, audit_put(audit_table, audit)]):
            self._refusal(self._current(request_id), audit.moderator, now)

    def _refusal(self, item: PredictionRecord, moderator: str, now: int) -> None:
        if item.review_status != "pending":
            raise Conflict(f"{item.request_id} is not pending review")
        if item.leased_to_other(moderator, now):
            raise Conflict(
                f"{item.request_id} is claimed by {item.lease_holder} until "
                f"{item.lease_expires_at} (epoch seconds)"
            )
        raise Conflict(f"{item.request_id} changed meanwhile; read it again")

    def decide_review(
        self,
        review: ReviewDecision,
        feedback: FeedbackRecord,
        audit: AuditRecord,
        audit_table: str,
        now: int,
    ) -> None:
        """Close a pending review (one nobody else holds), record it as feedback and in the
        audit log, in one transaction."""
        request_id = feedback.request_id
        update = {
            "Update": {
                "TableName": self.predictions_table,
                "Key": serialize(prediction_key(request_id)),
                "UpdateExpression": "SET review_status = :done, review = :r, "
                "review_queue = :queue REMOVE review_label_queue, review_policy_queue, "
                "lease_holder, lease_expires_at",
                "ConditionExpression": f"review_status = :pending AND {_LEASE_FREE}",
                "ExpressionAttributeValues": serialize(
                    {
                        ":done": "decided",
                        ":pending": "pending",
                        ":r": review.model_dump(),
                        ":queue": review_queue_key("decided", request_id),
                        ":me": review.moderator,
                        ":now": now,
                    }
                ),
            }
        }
        feedback_put = {
            "Put": {
                "TableName": self.predictions_table,
                "Item": serialize(feedback.item()),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        items = [update, feedback_put, audit_put(audit_table, audit)]
        if not self._transact(request_id, items):
            self._refusal(self._current(request_id), review.moderator, now)

    def reopen_review(
        self,
        prediction: PredictionRecord,
        audit: AuditRecord,
        audit_table: str,
        decided_since: str,
        lease_expires_at: int,
    ) -> None:
        """Undo ``audit.moderator``'s own decision taken at or after ``decided_since``: the
        item is pending again (held by them), and the decision's feedback is deleted, so the
        aggregates take it back (``buckets.removal_counters``). One transaction."""
        request_id = prediction.request_id
        reopened = prediction.model_copy(update={"review_status": "pending"})
        label_queue, policy_queue = lane_keys(reopened)
        values = {
            ":pending": "pending",
            ":decided": "decided",
            ":queue": review_queue_key("pending", request_id),
            ":labels": label_queue,
            ":me": audit.moderator,
            ":since": decided_since,
            ":until": lease_expires_at,
        }
        sets = "review_status = :pending, review_queue = :queue, review_label_queue = :labels, "
        sets += "lease_holder = :me, lease_expires_at = :until"
        if policy_queue:
            sets += ", review_policy_queue = :policies"
            values[":policies"] = policy_queue
        update = {
            "Update": {
                "TableName": self.predictions_table,
                "Key": serialize(prediction_key(request_id)),
                "UpdateExpression": f"SET {sets} REMOVE review",
                "ConditionExpression": "review_status = :decided AND review.moderator = :me "
                "AND review.decided_at >= :since",
                "ExpressionAttributeValues": serialize(values),
            }
        }
        delete = {
            "Delete": {
                "TableName": self.predictions_table,
                "Key": serialize(feedback_key(request_id, "moderator")),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        if not self._transact(request_id, [update, delete, audit_put(audit_table, audit)]):
            raise Conflict(f"{request_id} changed meanwhile; read it again")

    def traffic_sample(self, days: int, limit: int, now: datetime) -> list[SampledPrediction]:
        """Up to ``limit`` sampled predictions of the last ``days`` days (today included),
        newest first in each of the index's partitions, read evenly across them."""
        keys = [
            f"{(now - timedelta(days=back)).date().isoformat()}#{shard}"
            for back in range(days)
            for shard in range(TRAFFIC_SAMPLE_SHARDS)
        ]
        per_partition = max(1, -(-limit // len(keys)))
        sampled: list[SampledPrediction] = []
        for key in keys:
            arguments: dict[str, Any] = {
                "TableName": self.predictions_table,
                "IndexName": TRAFFIC_SAMPLE_INDEX,
                "KeyConditionExpression": "traffic_sample = :k",
                "ExpressionAttributeValues": {":k": {"S": key}},
                "ScanIndexForward": False,
                "Limit": per_partition,
            }
            try:
                items = self.client.query(**arguments).get("Items", [])
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc) from exc
            sampled += [SampledPrediction.model_validate(deserialize(i)) for i in items]
        return sampled[:limit]


def _encode_cursor(positions: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(positions).encode()).decode()


def _decode_cursor(cursor: str, attributes: Sequence[str]) -> dict[str, Any]:
    """The index positions a cursor of ours encodes; ``InvalidCursor`` for anything else."""
    try:
        positions = json.loads(base64.urlsafe_b64decode(cursor))
    except ValueError:
        raise InvalidCursor("is not a cursor this API issued") from None
    valid = isinstance(positions, dict) and all(
        key.isdigit()
        and (value == EXHAUSTED or (isinstance(value, dict) and set(value) == set(attributes)))
        for key, value in positions.items()
    )
    if not valid:
        raise InvalidCursor("is not a cursor this API issued")
    return positions
