"""What one stream record means for the aggregates. Plain functions: the handler only wires."""

from datetime import UTC, datetime
from functools import lru_cache

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from moderation.aggregates import AggregateStore
from moderation.aggregation import feedback_counters, prediction_counters
from moderation.settings import get_settings
from moderation.store import deserialize


@lru_cache
def get_aggregates() -> AggregateStore:
    return AggregateStore(get_settings().aggregates_table)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def count_record(record: DynamoDBRecord, aggregates: AggregateStore | None = None) -> str:
    """Count an inserted prediction or feedback item once; everything else changes nothing
    (modifies such as a review closing, and removes such as TTL expiry). Returns what it did."""
    if record.event_name != DynamoDBRecordEventName.INSERT:
        return "ignored"
    raw = record.raw_event["dynamodb"].get("NewImage") or {}
    item = deserialize(raw)
    kind = item.get("type")
    if kind == "prediction":
        counters = prediction_counters(item)
    elif kind == "feedback":
        counters = feedback_counters(item)
    else:
        return "ignored"
    store = aggregates or get_aggregates()
    counted = store.apply(
        f"{item['pk']}#{item['sk']}",
        parse_time(item["created_at"]),
        str(item.get("model_version") or "unknown"),
        counters,
    )
    return "counted" if counted else "duplicate"
