"""The DynamoDB store: prediction log, feedback, review queue and the score cache.

An adapter (ports and adapters): it speaks DynamoDB and turns ``ClientError`` into domain
errors. boto3's standard retry mode absorbs throttling; what still fails is
``StoreUnavailable``, and the API answers 503 with nothing half-written, because every
multi-item write is one transaction.
"""

import base64
import json
from collections.abc import Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from moderation.errors import Conflict, NotFound, StoreUnavailable

PREDICTION = "PREDICTION"
FEEDBACK = "FEEDBACK#"
REVIEW_INDEX = "review-queue"
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5
)

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


class DuplicateRequest(Exception):
    """Some predictions of a write already exist: an idempotent retry (see ``log``)."""


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"prediction store unavailable ({type(exc).__name__})")


class PredictionStore:
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

    def _cache_update(
        self, cache_key: str, scores: list[float], hits: int, expires_at: int
    ) -> dict:
        return {
            "TableName": self.cache_table,
            "Key": {"cache_key": {"S": cache_key}},
            "UpdateExpression": "SET scores = if_not_exists(scores, :s), expires_at = :e "
            "ADD hits :h",
            "ExpressionAttributeValues": serialize({":s": scores, ":e": expires_at, ":h": hits}),
        }

    # the prediction log
    def log(
        self,
        predictions: Sequence[dict[str, Any]],
        cache_writes: Sequence[tuple[str, list[float], int, int]] = (),
    ) -> None:
        """Write predictions atomically: all of them or none.

        Each prediction is a conditional put on a new request id, so a retried request with
        the same ``Idempotency-Key`` (same ids) raises ``DuplicateRequest`` and writes nothing.
        One prediction is a single conditional PutItem (atomic by itself, half the cost of a
        transaction); a batch is one transaction. Cache writes follow, best-effort: the cache
        is an optimisation, never a record.
        """
        puts = [
            {
                "TableName": self.predictions_table,
                "Item": serialize({**p, "pk": p["request_id"], "sk": PREDICTION}),
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
        for write in cache_writes:
            try:
                self.client.update_item(**self._cache_update(*write))
            except (ClientError, BotoCoreError):
                break  # the store is struggling: skip the cache rather than slow the caller

    def get_predictions(self, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = [{"pk": {"S": rid}, "sk": {"S": PREDICTION}} for rid in request_ids]
        try:
            items = self._batch_get(self.predictions_table, keys, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        return {item["request_id"]: item for item in items}

    def get_prediction(self, request_id: str) -> dict[str, Any]:
        item = self.get_predictions([request_id]).get(request_id)
        if item is None:
            raise NotFound(f"no prediction with request_id {request_id}")
        return item

    # feedback and reviews
    def add_feedback(self, request_id: str, feedback: dict[str, Any]) -> bool:
        """Record feedback once per (prediction, source); True when newly written.

        The caller has read the prediction (unknown ids are ``NotFound`` there). The same
        feedback again is a no-op (False); different feedback from the same source is a
        ``Conflict``."""
        item = {**feedback, "pk": request_id, "sk": FEEDBACK + feedback["source"]}
        try:
            self.client.put_item(
                TableName=self.predictions_table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return self._same_feedback(request_id, item)
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def _same_feedback(self, request_id: str, item: dict[str, Any]) -> bool:
        existing = self.client.get_item(
            TableName=self.predictions_table,
            Key={"pk": {"S": request_id}, "sk": {"S": item["sk"]}},
            ConsistentRead=True,
        ).get("Item")
        if existing and deserialize(existing).get("fingerprint") == item["fingerprint"]:
            return False
        raise Conflict(f"different feedback from {item['source']} is already recorded")

    def pending_reviews(
        self, limit: int, cursor: str | None = None, status: str = "pending"
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Review items with ``status``, oldest first, and an opaque cursor for the next page."""
        arguments: dict[str, Any] = {
            "TableName": self.predictions_table,
            "IndexName": REVIEW_INDEX,
            "KeyConditionExpression": "review_status = :s",
            "ExpressionAttributeValues": {":s": {"S": status}},
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if cursor:
            arguments["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(cursor))
        try:
            response = self.client.query(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        last = response.get("LastEvaluatedKey")
        next_cursor = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return [deserialize(item) for item in response.get("Items", [])], next_cursor

    def count_reviews(self, status: str = "pending") -> int:
        arguments: dict[str, Any] = {
            "TableName": self.predictions_table,
            "IndexName": REVIEW_INDEX,
            "KeyConditionExpression": "review_status = :s",
            "ExpressionAttributeValues": {":s": {"S": status}},
            "Select": "COUNT",
        }
        total = 0
        try:
            while True:
                response = self.client.query(**arguments)
                total += response["Count"]
                if "LastEvaluatedKey" not in response:
                    return total
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    def decide_review(
        self, request_id: str, review: dict[str, Any], feedback: dict[str, Any]
    ) -> None:
        """Close a pending review and record it as feedback, in one transaction."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.predictions_table,
                            "Key": {"pk": {"S": request_id}, "sk": {"S": PREDICTION}},
                            "UpdateExpression": "SET review_status = :done, review = :r",
                            "ConditionExpression": "review_status = :pending",
                            "ExpressionAttributeValues": serialize(
                                {":done": "decided", ":pending": "pending", ":r": review}
                            ),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.predictions_table,
                            "Item": serialize(
                                {**feedback, "pk": request_id, "sk": FEEDBACK + feedback["source"]}
                            ),
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
