"""Reads a DynamoDB stream the way Lambda's event source mapping does, for the local stack.

Lists shards, reads each from its checkpoint (``AFTER_SEQUENCE_NUMBER``) or the start
(``TRIM_HORIZON``), calls the handler with Lambda's event shape, and moves the checkpoint to
just before the first failed record of a partial batch response: a restart neither skips nor
repeats records, and a failed record is retried.
"""

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from local.lambda_context import LambdaContext
from local.moto_server import wait_for_moto
from moderation.settings import get_settings

logger = logging.getLogger("local.streams")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Checkpoints:
    """Last processed sequence number per shard, in a JSON file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, shard_id: str) -> str | None:
        return self.positions.get(shard_id)

    def set(self, shard_id: str, sequence_number: str) -> None:
        self.positions[shard_id] = sequence_number
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.positions, indent=1))
        os.replace(tmp, self.path)


def lambda_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A record from GetRecords as Lambda hands it over: boto3 parses the creation time
    into a datetime, Lambda's event carries epoch seconds."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": dynamodb, "eventSourceARN": arn}


class StreamReader:
    def __init__(
        self,
        table: str,
        handler: Handler,
        checkpoints: Checkpoints,
        dynamodb: Any,
        streams: Any,
        batch_size: int = 1000,
        context: Any = None,
    ) -> None:
        self.table, self.handler, self.checkpoints = table, handler, checkpoints
        self.dynamodb, self.streams = dynamodb, streams
        self.batch_size, self.context = batch_size, context

    def stream_arn(self) -> str:
        return self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]

    def poll(self) -> int:
        """One pass over every shard; returns how many records were handled successfully."""
        arn = self.stream_arn()
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        handled = 0
        for shard in shards:
            handled += self._poll_shard(arn, shard["ShardId"])
        return handled

    def _poll_shard(self, arn: str, shard_id: str) -> int:
        position = self.checkpoints.get(shard_id)
        arguments: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id}
        if position:
            arguments |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position}
        else:
            arguments["ShardIteratorType"] = "TRIM_HORIZON"
        iterator = self.streams.get_shard_iterator(**arguments)["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)["Records"]
        if not records:
            return 0
        # Lambda's event for a tumbling-window mapping (template.yaml) names the shard
        event = {
            "Records": [lambda_record(r, arn) for r in records],
            "shardId": shard_id,
            "eventSourceARN": arn,
        }
        try:
            response = self.handler(event, self.context) or {}
        except Exception as exc:  # noqa: BLE001 - as Lambda: a raised error fails the batch
            logger.warning("batch of %d failed (%s); retrying it", len(records), exc)
            return 0
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = records
        for index, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failed:
                done = records[:index]
                logger.warning("record %s failed; retrying from it", record["eventID"])
                break
        if done:
            self.checkpoints.set(shard_id, done[-1]["dynamodb"]["SequenceNumber"])
        return len(done)


def run(state_dir: Path, interval: float = 1.0) -> None:
    """Feed the predictions table's stream to the aggregator handler, as Lambda would."""
    from aggregator.handler import handler

    wait_for_moto(state_dir)
    settings = get_settings()
    dynamodb = boto3.client("dynamodb")
    waited, table = None, settings.predictions_table
    while table not in dynamodb.list_tables()["TableNames"]:
        if waited is None or time.monotonic() - waited > 30:
            logger.info("streams: waiting for the bootstrap to create %s", table)
            waited = time.monotonic()
        time.sleep(0.5)
    reader = StreamReader(
        settings.predictions_table,
        handler,
        Checkpoints(state_dir / "stream-checkpoints.json"),
        dynamodb,
        boto3.client("dynamodbstreams"),
        context=LambdaContext(function_name="toxic-moderation-aggregator-local"),
    )
    logger.info("streams: feeding %s to the aggregator", settings.predictions_table)
    run_until_stopped(reader.poll, interval, "streams")


def run_until_stopped(step: Callable[[], int], interval: float, name: str) -> None:
    """Call ``step`` (how much it handled) until SIGTERM or SIGINT, waiting ``interval``
    seconds after a pass that handled nothing; a pass that fails is logged and retried."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        try:
            handled = step()
        except Exception as exc:  # noqa: BLE001 - keep going through transient faults
            logger.warning("%s: pass failed (%s); retrying", name, type(exc).__name__)
            handled = 0
        if not handled:
            stop.wait(interval)
