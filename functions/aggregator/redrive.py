"""Re-counting what the aggregator's dead-letter queue holds, exactly once.

Two kinds of message land there: Lambda's own on-failure records (a shard's batch that
still failed after 6 hours: its ``DDBStreamBatchInfo`` names the shard and the sequence
range, whose records stay in the stream for 24 hours), and stream records the aggregator
could not read as log items (sent whole by ``DeadLetters``). Each is counted under a
high-water mark of its own (``redrive-<shard>-<first sequence>``, ``redrive-<event id>``),
so a message delivered twice, or a re-drive run twice, counts once. A message is deleted
only once its records are counted; one that still fails stays for the next run.

Run it (the AggregatorRedriveFunction output of template.yaml):
``aws lambda invoke --function-name <that> --payload '{"max_messages": 100}' out.json``.
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from aggregator.counting import BatchOutcome, count_batch, get_aggregates, record_counters
from moderation.log import logger
from moderation.settings import get_settings
from moderation.stores.aggregates import AggregateStore


@dataclass
class RedriveReport:
    messages: int = 0
    counted: int = 0
    duplicates: int = 0
    kept: list[str] = field(default_factory=list)


class Redrive:
    def __init__(
        self,
        queue_url: str,
        sqs: Any | None = None,
        streams: Any | None = None,
        aggregates: AggregateStore | None = None,
    ) -> None:
        self.queue_url = queue_url
        self._sqs, self._streams, self._aggregates = sqs, streams, aggregates

    @cached_property
    def sqs(self) -> Any:
        return self._sqs or boto3.client("sqs")

    @cached_property
    def streams(self) -> Any:
        return self._streams or boto3.client("dynamodbstreams")

    @cached_property
    def aggregates(self) -> AggregateStore:
        return self._aggregates or get_aggregates()

    def run(self, max_messages: int = 100) -> RedriveReport:
        report = RedriveReport()
        while report.messages < max_messages:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, max_messages - report.messages),
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                report.messages += 1
                outcome = self._count(json.loads(message["Body"]))
                report.counted += outcome.counted
                report.duplicates += outcome.duplicates
                if outcome.retry_from is None and not outcome.dead_lettered:
                    self.sqs.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                else:
                    report.kept.append(message["MessageId"])
        return report

    def _count(self, body: dict[str, Any]) -> BatchOutcome:
        if "DDBStreamBatchInfo" in body:
            info = body["DDBStreamBatchInfo"]
            records = self._stream_range(info)
            shard = f"redrive-{info['shardId']}-{info['startSequenceNumber']}"
            return count_batch({"Records": records, "shardId": shard}, self.aggregates)
        if "deadLetteredRecord" in body:
            record = body["deadLetteredRecord"]
            try:  # still unreadable: keep it (never back into the queue it came from)
                record_counters(record)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning(
                    "dead letter %s still cannot be counted: %s", record.get("eventID"), exc
                )
                return BatchOutcome(dead_lettered=1)
            shard = f"redrive-{record['eventID']}"
            return count_batch({"Records": [record], "shardId": shard}, self.aggregates)
        logger.warning("unknown dead-letter message kept: %s", sorted(body))
        return BatchOutcome(dead_lettered=1)

    def _stream_range(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """The shard's records from ``startSequenceNumber`` to ``endSequenceNumber``."""
        end = int(info["endSequenceNumber"])
        iterator = self.streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in response["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > end:
                    return records
                records.append({**record, "eventSourceARN": info["streamArn"]})
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
        return records


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    queue_url = get_settings().dead_letter_queue_url
    if not queue_url:
        raise ValueError("DEAD_LETTER_QUEUE_URL is not set")
    report = Redrive(queue_url).run(int(event.get("max_messages", 100)))
    logger.info("re-drive done", extra=report.__dict__)
    return report.__dict__
