"""moto in server mode, the local stand-in for DynamoDB, Streams and S3, with durable state.

moto's request recorder appends every request to ``<state>/moto_recording.jsonl``; at start
the read-only requests are dropped from it and the rest is replayed, so tables, the registry
and the model survive a restart. Two patches of moto's internals keep it usable under the
local stack's traffic (see each one's docstring); the code under test is unchanged.
"""

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

logger = logging.getLogger("local.moto")

READ_ONLY_TARGETS = {
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams",
    "DescribeContinuousBackups", "ListTagsOfResource",
}  # fmt: skip


def _is_write(entry: dict) -> bool:
    if entry.get("method") in ("GET", "HEAD", "OPTIONS"):
        return False
    target = (entry.get("headers") or {}).get("X-Amz-Target", "")
    return target.rsplit(".", 1)[-1] not in READ_ONLY_TARGETS


def _records(line: str) -> tuple[list[dict], int]:
    """Every complete JSON record on a line (interleaved writes can put two on one), and
    how many characters could not be decoded (a write cut short by a crash)."""
    decoder = json.JSONDecoder()
    found, position, line = [], 0, line.strip()
    while position < len(line):
        try:
            record, end = decoder.raw_decode(line, position)
        except ValueError:
            return found, len(line) - position
        found.append(record)
        position = end
        while position < len(line) and line[position].isspace():
            position += 1
    return found, 0


def compact_recording(recording: Path) -> tuple[int, int]:
    """Keep only the requests that change state; returns (requests read, writes kept)."""
    if not recording.exists():
        return 0, 0
    records, lost = [], 0
    for line in recording.read_text().splitlines():
        found, undecodable = _records(line)
        records += found
        lost += undecodable
    if lost:
        logger.warning("moto: dropped %d undecodable characters from the recording", lost)
    kept = [json.dumps(record) for record in records if _is_write(record)]
    tmp = recording.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(recording)
    return len(records), len(kept)


def patch_moto_recorder() -> None:
    """moto's recorder appends a request as two writes (JSON, then a newline) with no lock;
    under its threaded server, concurrent requests interleaved on one line (seen with seed
    traffic, the API and the stream runner at once). One lock, one write."""
    from moto.moto_api._internal.recorder.models import Recorder

    if getattr(Recorder, "_toxic_patched", False):
        return
    lock = threading.Lock()
    original = Recorder._record_request

    def record_request(self, request, body=None):  # noqa: ANN001, ANN202
        with lock:
            return original(self, request, body)

    Recorder._record_request = record_request
    Recorder._toxic_patched = True


def patch_moto_transactions() -> None:
    """Make moto's TransactWriteItems cost what DynamoDB's does: O(items touched).

    moto snapshots the *whole table* (its stream records included) once per action of every
    transaction, in case it must roll back: a 100-record aggregator batch against a
    table of 10k items took minutes and gigabytes (measured: +300 MB and +1.5 s per 100
    records). This snapshots only the items the transaction names, and the stream lengths,
    and restores exactly those on failure. Local stack only; the code under test is unchanged.
    """
    import copy as copy_module

    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    if getattr(backend_module, "_toxic_patched", False):
        return

    class _TablesNotCopied:
        copy = staticmethod(copy_module.copy)

        @staticmethod
        def deepcopy(value, memo=None):  # noqa: ANN001, ANN205
            return value if isinstance(value, Table) else copy_module.deepcopy(value, memo)

    original = backend_module.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):  # noqa: ANN001, ANN202
        touched, streams = [], {}
        for action in transact_items:
            kind, op = next(iter(action.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None or kind == "ConditionCheck":
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            )
            bucket = table.items.get(hash_value)
            # table.items is a defaultdict: a bucket can be an empty dict, which is no item
            if range_value is None:
                current = bucket if isinstance(bucket, Item) else None
            else:
                current = bucket.get(range_value) if isinstance(bucket, dict) else None
            touched.append((table, hash_value, range_value, copy_module.deepcopy(current)))
            if table.stream_shard is not None:
                streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(touched):
                if range_value is None:
                    if before is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = before
                elif before is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                    if hash_value in table.items and not table.items[hash_value]:
                        del table.items[hash_value]
                else:
                    table.items[hash_value][range_value] = before
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    backend_module.copy = _TablesNotCopied
    backend_module.DynamoDBBackend.transact_write_items = transact_write_items
    backend_module._toxic_patched = True


def serve(port: int, state_dir: Path, host: str = "127.0.0.1") -> None:
    """Run moto's server (loopback by default) with its state replayed from STATE_DIR."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "moto.ready"
    ready.unlink(missing_ok=True)
    recording = state_dir / "moto_recording.jsonl"
    before, after = compact_recording(recording)
    os.environ["MOTO_ENABLE_RECORDING"] = "True"  # read by moto at import
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording.resolve())
    import requests
    from moto.server import ThreadedMotoServer

    patch_moto_transactions()
    patch_moto_recorder()

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    if after:
        started = time.perf_counter()
        requests.post(f"http://127.0.0.1:{port}/moto-api/recorder/replay-recording", timeout=600)
        logger.info(
            "moto: replayed %d recorded writes (of %d requests) in %.1fs",
            after, before, time.perf_counter() - started,
        )  # fmt: skip
    ready.write_text(str(os.getpid()))
    logger.info("moto: serving AWS on http://%s:%d (state in %s)", host, port, state_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    ready.unlink(missing_ok=True)


def wait_for_moto(state_dir: Path, timeout: float = 120) -> None:
    ready = state_dir / "moto.ready"
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"moto did not become ready in {timeout}s")
        time.sleep(0.2)
