"""The moderators' audit log in DynamoDB: every claim, decision and undo, kept after the
predictions (and their text) expire: it has no TTL and holds no comment text.

Lines are written inside the review store's transactions (``audit_put``), so a decision and
its audit line land together or not at all; this module reads them back: one item's
history, or every line of a range of days (the CSV export).
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from moderation.errors import StoreUnavailable
from moderation.records import AuditRecord
from moderation.stores.dynamo import TableAdapter, deserialize, serialize

AUDIT_DAY_INDEX = "audit-by-day"
#: the CSV export's columns, in order
AUDIT_COLUMNS = (
    "at",
    "request_id",
    "action",
    "moderator",
    "reason",
    "true_labels",
    "policy_id",
    "lease_expires_at",
)


def audit_put(table: str, record: AuditRecord) -> dict[str, Any]:
    """A transaction item writing one audit line (never over another)."""
    return {
        "Put": {
            "TableName": table,
            "Item": serialize(record.item()),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


class AuditLog(TableAdapter):
    def _query(self, **arguments: Any) -> Iterator[AuditRecord]:
        arguments = {"TableName": self.table, **arguments}
        while True:
            try:
                response = self.client.query(**arguments)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"audit log unavailable ({type(exc).__name__})") from exc
            for item in response.get("Items", []):
                yield AuditRecord.model_validate(deserialize(item))
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def history(self, request_id: str) -> list[AuditRecord]:
        """One item's lines, oldest first."""
        return list(
            self._query(
                KeyConditionExpression="pk = :id",
                ExpressionAttributeValues={":id": {"S": request_id}},
                ConsistentRead=True,
            )
        )

    def between(self, first: date, last: date) -> Iterator[AuditRecord]:
        """Every line from ``first`` to ``last`` (UTC days, both included), oldest first."""
        day = first
        while day <= last:
            yield from self._query(
                IndexName=AUDIT_DAY_INDEX,
                KeyConditionExpression="#d = :day",
                ExpressionAttributeNames={"#d": "day"},
                ExpressionAttributeValues={":day": {"S": day.isoformat()}},
            )
            day += timedelta(days=1)


def csv_cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet shows as text: lists joined with ``;``, and a
    leading ``= + - @`` (a formula to Excel) escaped with ``'``."""
    if value is None:
        return ""
    text = ";".join(value) if isinstance(value, list) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
