"""The prediction log in DynamoDB: predictions, feedback, the review queue and the score cache.

It speaks DynamoDB and turns ``ClientError`` into domain errors. boto3's standard retry mode
absorbs throttling; what still fails is ``StoreUnavailable``, and the API answers 503 with
nothing half-written, because every multi-item write is one transaction.
"""

import base64
import heapq
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from moderation.errors import Conflict, InvalidCursor, NotFound, StoreUnavailable
from moderation.records import (
    REVIEW_SHARDS,
    TRAFFIC_SAMPLE_SHARDS,
    FeedbackRecord,
    PredictionRecord,
    ReviewDecision,
    ReviewStatus,
    SampledPrediction,
    prediction_key,
    review_queue_key,
)
from moderation.stores.dynamo import RETRY_CONFIG, deserialize, serialize

REVIEW_INDEX = "review-queue-sharded"
TRAFFIC_SAMPLE_INDEX = "traffic-sample"
#: an index position: the index's key and the table's
INDEX_KEY_ATTRIBUTES = ("review_queue", "created_at", "pk", "sk")
EXHAUSTED = "done"
#: (cache key, scores, expiry as epoch seconds): a newly scored comment
CacheWrite = tuple[str, list[float], int]
#: BatchWriteItem's limit, and how often its unprocessed items are sent again
_BATCH_WRITE_ITEMS = 25
_BATCH_WRITE_ATTEMPTS = 3


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

    def reviews(
        self, status: ReviewStatus, limit: int, cursor: str | None = None
    ) -> tuple[list[PredictionRecord], str | None]:
        """Review items with ``status``, oldest first, and an opaque cursor for the next page.

        The index has ``REVIEW_SHARDS`` partitions per status: each is read from where the
        cursor left it (``limit`` items, already oldest first), the pages are merged, and the
        cursor keeps each partition's position (or that it is exhausted)."""
        positions = _decode_cursor(cursor) if cursor else {}
        per_shard: list[list[tuple[int, dict[str, Any]]]] = []
        more: dict[int, bool] = {}
        for shard in range(REVIEW_SHARDS):
            position = positions.get(str(shard))
            if position == EXHAUSTED:
                continue
            arguments: dict[str, Any] = {
                "TableName": self.predictions_table,
                "IndexName": REVIEW_INDEX,
                "KeyConditionExpression": "review_queue = :q",
                "ExpressionAttributeValues": {":q": {"S": f"{status}#{shard}"}},
                "ScanIndexForward": True,
                "Limit": limit,
            }
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
            more[shard] = "LastEvaluatedKey" in response
        # a merge keeps each shard's own order, so what a page takes of a shard is a prefix
        # of what the shard returned and its position is the last item taken
        found = list(heapq.merge(*per_shard, key=lambda pair: pair[1]["created_at"]["S"]))
        page = found[:limit]
        taken = dict(page)  # shard -> the last item taken from it
        left = {shard for shard, _ in found[limit:]}
        next_positions = dict(positions)
        for shard, was_more in more.items():
            if shard in taken:
                item = taken[shard]
                next_positions[str(shard)] = {k: item[k] for k in INDEX_KEY_ATTRIBUTES}
            if not was_more and shard not in left:
                next_positions[str(shard)] = EXHAUSTED
        done = all(next_positions.get(str(s)) == EXHAUSTED for s in range(REVIEW_SHARDS))
        next_cursor = None if done else _encode_cursor(next_positions)
        items = [PredictionRecord.model_validate(deserialize(item)) for _, item in page]
        return items, next_cursor

    def decide_review(self, review: ReviewDecision, feedback: FeedbackRecord) -> None:
        """Close a pending review and record it as feedback, in one transaction."""
        request_id = feedback.request_id
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.predictions_table,
                            "Key": serialize(prediction_key(request_id)),
                            "UpdateExpression": "SET review_status = :done, review = :r, "
                            "review_queue = :queue",
                            "ConditionExpression": "review_status = :pending",
                            "ExpressionAttributeValues": serialize(
                                {
                                    ":done": "decided",
                                    ":pending": "pending",
                                    ":r": review.model_dump(),
                                    ":queue": review_queue_key("decided", request_id),
                                }
                            ),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.predictions_table,
                            "Item": serialize(feedback.item()),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in reasons:
                item = self.get_predictions([request_id]).get(request_id)
                if item is None:
                    raise NotFound(f"no prediction with request_id {request_id}") from exc
                raise Conflict(f"{request_id} is not pending review") from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

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


def _decode_cursor(cursor: str) -> dict[str, Any]:
    """The index positions a cursor of ours encodes; ``InvalidCursor`` for anything else."""
    try:
        positions = json.loads(base64.urlsafe_b64decode(cursor))
    except ValueError:
        raise InvalidCursor("is not a cursor this API issued") from None
    valid = isinstance(positions, dict) and all(
        key.isdigit()
        and (
            value == EXHAUSTED
            or (isinstance(value, dict) and set(value) == set(INDEX_KEY_ATTRIBUTES))
        )
        for key, value in positions.items()
    )
    if not valid:
        raise InvalidCursor("is not a cursor this API issued")
    return positions
