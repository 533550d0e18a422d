"""moto in server mode, the local stand-in for DynamoDB, Streams and S3, with durable state.

State (see ``local.moto_state``): a snapshot of moto's backends plus a journal of the writes
served since. At start the newest good snapshot is loaded and the journal tail replayed in
process; then moto serves. While it serves, every write is journaled before it is applied,
and a snapshot is taken every ``snapshot_seconds`` (or ``snapshot_writes`` writes) by a
forked child, so serving goes on meanwhile; a clean stop takes a last one. Restart cost is
one snapshot load plus the writes since the last snapshot, however long the stack has run.

The port answers from the first moment: ``GET /_local/status`` says what moto is doing
(loading, replaying n of m writes, ready), and every other request is refused with 503 until
the state is loaded. ``wait_for_moto`` waits on that signal.

Patches of moto's internals keep it usable under the local stack's traffic (see each one's
docstring); the code under test is unchanged.
"""

import calendar
import contextlib
import gc
import io
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from local import moto_state
from local.moto_state import (
    JOURNAL_RE,
    LEGACY_RECORDING,
    SNAPSHOT_RE,
    Journal,
    SnapshotError,
    entry_request,
    generations,
    is_write,
    journal_entry,
    journal_path,
    read_journal,
    read_snapshot,
    snapshot_path,
)

logger = logging.getLogger("local.moto")

STATUS_PATH = "/_local/status"
SNAPSHOT_SECONDS = 30.0
SNAPSHOT_WRITES = 2_000


# --- patches of moto ----------------------------------------------------------------------


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


#: DynamoDB reads whose responses are plain attribute-value JSON
FAST_JSON_OPERATIONS = {
    ("dynamodb", "Query"), ("dynamodb", "Scan"), ("dynamodb", "GetItem"),
    ("dynamodb", "BatchGetItem"), ("dynamodb", "TransactGetItems"),
    ("dynamodbstreams", "GetRecords"),
}  # fmt: skip


#: off: every response takes moto's own serialiser (the tests compare the two)
FAST_JSON = True


class _NotPlain(TypeError):
    pass


def _plain(value: Any) -> Any:
    """A result as the JSON protocol writes it: None dropped, bytes base64, datetimes as
    epoch seconds; anything else unexpected raises (and the response takes moto's path)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.utctimetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    raise _NotPlain(type(value).__name__)


def patch_moto_json_responses() -> None:
    """Serialise DynamoDB's item reads with ``json.dumps`` instead of moto's shape walker.

    moto 5 serialises every response by walking botocore's output shape, value by value:
    about 280 us per attribute, so a Query of 300 aggregate buckets (~200 counters each)
    took 17 s and a stream poll of 100 records most of a second. The item reads' results are
    already the wire format (attribute-value maps), so they are dumped as they are; any
    other response, error or value takes moto's own path. ``tests/integration/
    test_local_moto.py`` checks both give the same JSON.
    """
    from moto.core.responses import ActionResult
    from moto.core.serialize import BaseJSONSerializer

    if getattr(ActionResult, "_toxic_patched", False):
        return
    original = ActionResult.execute_result

    def execute_result(self, context):  # noqa: ANN001, ANN202
        service = context.service_model.service_name
        operation = context.operation_model.name
        result = self.result
        if (
            FAST_JSON
            and (service, operation) in FAST_JSON_OPERATIONS
            and isinstance(result, dict)
            and issubclass(context.serializer_class, BaseJSONSerializer)
        ):
            try:
                body = json.dumps(_plain(result))
            except _NotPlain:
                return original(self, context)
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            status = context.operation_model.http.get("responseCode", 200)
            return status, {"Content-Type": f"application/x-amz-json-{version}"}, body
        return original(self, context)

    ActionResult.execute_result = execute_result
    ActionResult._toxic_patched = True


def patch_moto_item_order() -> None:
    """Sort a table's items once per item, not once per comparison.

    Every Scan and every Query on an index starts from ``Table.all_items()``, all items in
    key order; moto sorts them on ``DynamoType`` keys, whose comparisons convert both values
    each time: 1.7 s per call at 10,000 predictions, and the API's review queue reads 8
    index partitions per page (6 s). The same order, from keys converted once per item.
    """
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_toxic_patched", False):
        return

    def all_items(self):  # noqa: ANN001, ANN202
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)

        def key(item):  # noqa: ANN001, ANN202 - as moto's: (hash, range) or hash alone
            # an item's key never changes (a write makes a new Item): converted once, kept
            cached = item.__dict__.get("_toxic_order")
            if cached is None:
                cached = item.hash_key.cast_value
                if item.range_key:
                    cached = (cached, item.range_key.cast_value)
                item.__dict__["_toxic_order"] = cached
            return cached

        return sorted(items, key=key)

    Table.all_items = all_items
    Table._toxic_patched = True


class _Untracked(list):
    def append(self, _value: Any) -> None:
        pass


def patch_instance_tracking() -> None:
    """moto keeps every model object it ever created in a class-level list (for its
    ``/moto-api`` data view): every item version, stream record and transaction copy, so
    the server's memory grew with its history. DynamoDB's models stop being tracked."""
    import moto.dynamodb.models.dynamo_type as dynamo_type
    import moto.dynamodb.models.table as table

    for module in (dynamo_type, table):
        for value in vars(module).values():
            if isinstance(getattr(value, "instances_tracked", None), list):
                value.instances_tracked = _Untracked()


def patch_moto() -> None:
    patch_moto_transactions()
    patch_moto_json_responses()
    patch_moto_item_order()
    patch_instance_tracking()
    moto_state.patch_stream_records()
    moto_state.patch_lazy_items()


# --- the server ---------------------------------------------------------------------------


def _respond(
    start_response: Callable, status: str, payload: dict[str, Any], headers: Iterable = ()
) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def environ_body(environ: dict[str, Any]) -> bytes:
    return environ["wsgi.input"].read()


def _request_body(environ: dict[str, Any]) -> bytes:
    """The whole body (a chunked one too), put back as a plain stream with its length."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


class LocalMoto:
    """moto's WSGI app behind a gate: a status endpoint, 503 until the state is loaded, every
    write journaled and applied under one lock (so the journal's order is the order writes
    were applied, and a replay rebuilds the same stream sequence numbers), and snapshots."""

    def __init__(
        self,
        state_dir: Path,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        snapshot_writes: int = SNAPSHOT_WRITES,
    ) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.state_dir = state_dir
        self.snapshot_seconds, self.snapshot_writes = snapshot_seconds, snapshot_writes
        self.app = DomainDispatcherApplication(create_backend_app)
        self.journal = Journal(state_dir)
        self.write_lock = threading.Lock()
        self.snapshot_lock = threading.Lock()  # one snapshot at a time
        self.status: dict[str, Any] = {"ready": False, "phase": "starting", "pid": os.getpid()}
        self.writes_since_snapshot = 0
        self.last_snapshot_at = time.monotonic()
        self.last_snapshot_s = 0.0
        self.good_snapshots: list[int] = []  # generations known to read back, oldest first
        self.stopping = threading.Event()

    # WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATUS_PATH:
            return _respond(start_response, "200 OK", self.status)
        if not self.status["ready"]:
            return _respond(
                start_response,
                "503 Service Unavailable",
                {"__type": "ServiceUnavailable", "message": f"moto is {self.describe()}"},
                [("Retry-After", "1")],
            )
        if not is_write(environ.get("REQUEST_METHOD", ""), environ.get("HTTP_X_AMZ_TARGET")):
            return self.app(environ, start_response)
        body = _request_body(environ)
        with self.write_lock, moto_state.writing():
            self.journal.append(journal_entry(environ, body))
            self.writes_since_snapshot += 1
            return self.app(environ, start_response)

    def describe(self) -> str:
        detail = self.status.get("detail")
        return f"{self.status['phase']} ({detail})" if detail else self.status["phase"]

    def _set_status(self, phase: str, detail: str | None = None, **extra: Any) -> None:
        self.status = {**self.status, "phase": phase, "detail": detail, **extra}

    # loading
    def load(self) -> dict[str, Any]:
        """The newest good snapshot, then the journal segments from its generation on."""
        started = time.perf_counter()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._adopt_legacy_recording()
        base, loaded = -1, None
        for generation in reversed(generations(self.state_dir, SNAPSHOT_RE)):
            path = snapshot_path(self.state_dir, generation)
            self._set_status("loading", f"snapshot {path.name}")
            try:
                content = read_snapshot(path)
            except (SnapshotError, OSError) as exc:
                logger.error(
                    "moto: snapshot %s is unusable (%s); set aside as %s.bad, "
                    "falling back to the one before it", path.name, exc, path.name,
                )  # fmt: skip
                path.replace(path.with_name(path.name + ".bad"))
                continue
            moto_state.restore(content["backends"])
            base, loaded = generation, content
            self.good_snapshots.append(generation)
            break
        segments = [g for g in generations(self.state_dir, JOURNAL_RE) if g >= base]
        if base < 0 and segments and segments[0] != 0:
            self._set_aside_unrestorable(segments)
            segments = []
        replayed, failed, skipped = self._replay(segments)
        # the loaded state lives as long as the process: out of the collector's way (a full
        # collection would otherwise walk millions of item objects, again and again)
        gc.collect()
        gc.freeze()
        load_s = time.perf_counter() - started
        next_generation = max([base, *segments, *generations(self.state_dir, SNAPSHOT_RE)]) + 1
        self.journal.open(next_generation)
        self.writes_since_snapshot = replayed
        summary = {
            "snapshot": snapshot_path(self.state_dir, base).name if base >= 0 else None,
            "snapshot_writes_before": (loaded or {}).get("meta", {}).get("writes"),
            "replayed_writes": replayed,
            "replay_failures": failed,
            "damaged_records": skipped,
            "load_s": round(load_s, 2),
        }
        logger.info(
            "moto: state loaded in %.1fs: %s, then %d journaled writes replayed",
            load_s, summary["snapshot"] or "no snapshot (empty state)", replayed,
        )  # fmt: skip
        self.status["load"] = summary
        return summary

    def _adopt_legacy_recording(self) -> None:
        """moto's own recording (earlier versions of the local stack) becomes journal segment
        0 when there is nothing newer: replayed once, then folded into a snapshot."""
        legacy = self.state_dir / LEGACY_RECORDING
        if not legacy.exists():
            return
        if generations(self.state_dir, SNAPSHOT_RE) or generations(self.state_dir, JOURNAL_RE):
            logger.warning("moto: ignoring %s (newer snapshots are there); delete it", legacy)
            return
        logger.info("moto: converting %s (moto's recording) into the journal, once", legacy)
        legacy.replace(journal_path(self.state_dir, 0))

    def _set_aside_unrestorable(self, segments: list[int]) -> None:
        folder = self.state_dir / f"unrestorable-{time.strftime('%Y%m%dT%H%M%S')}"
        folder.mkdir()
        for path in self.state_dir.iterdir():
            # the stream runner's positions too: they point into the streams set aside
            if path.name.startswith(("moto-journal-", "moto-snapshot-", "stream-checkpoints")):
                path.replace(folder / path.name)
        logger.error(
            "moto: no snapshot reads back and the journal starts at segment %d, not 0, so "
            "the state cannot be rebuilt; its files are set aside in %s and moto starts "
            "EMPTY (make reset-local clears everything)", segments[0], folder,
        )  # fmt: skip

    def _replay(self, segments: list[int]) -> tuple[int, int, int]:
        """Apply journaled writes in process, in order; (replayed, failed, damaged)."""
        reads = []
        for generation in segments:
            path = journal_path(self.state_dir, generation)
            read = read_journal(path)
            if read.damaged:
                logger.error(
                    "moto: %s: %d damaged record(s) skipped; the writes after them are "
                    "replayed as recorded", path.name, read.damaged,
                )  # fmt: skip
            if read.torn_tail:
                logger.warning(
                    "moto: %s ends in a record cut short by a crash (never applied, never "
                    "answered); ignored", path.name,
                )  # fmt: skip
            reads.append(read)
        entries = [entry for read in reads for entry in read.entries]
        total, failed, first_error = len(entries), 0, None
        done = 0
        for done, entry in enumerate(entries, 1):
            environ, body = entry_request(entry)
            if not is_write(environ.get("REQUEST_METHOD", ""), environ.get("HTTP_X_AMZ_TARGET")):
                continue  # moto's old recordings hold reads too
            with moto_state.writing():
                status = self._apply(environ, body)
            if status >= 500:
                failed += 1
                first_error = first_error or f"{environ.get('REQUEST_METHOD')} -> {status}"
            if done % 500 == 0:
                self._set_status("replaying", f"{done:,} of {total:,} journaled writes")
        if first_error:
            logger.warning("moto: %d replayed writes failed (first: %s)", failed, first_error)
        return done, failed, sum(read.damaged for read in reads)

    def warm_up(self) -> None:
        """Build moto's per-service apps (routing tables, models) before opening the gate,
        with a read of each service the stack uses, rather than in its first clients'
        requests."""
        from werkzeug.test import EnvironBuilder

        def signed(service: str) -> str:
            scope = f"local/20260101/us-east-1/{service}/aws4_request"
            return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"

        reads = [
            ("POST", "/", {"X-Amz-Target": "DynamoDB_20120810.ListTables"}, "dynamodb"),
            ("POST", "/", {"X-Amz-Target": "DynamoDBStreams_20120810.ListStreams"}, "dynamodb"),
            ("GET", "/", {}, "s3"),
        ]
        for method, path, headers, service in reads:
            builder = EnvironBuilder(
                path=path,
                method=method,
                data=b"{}" if method == "POST" else b"",
                headers={
                    **headers,
                    "Host": "127.0.0.1",
                    "Authorization": signed(service),
                    "Content-Type": "application/x-amz-json-1.0",
                },
            )
            environ = builder.get_environ()
            builder.close()
            self._apply(
                {k: v for k, v in environ.items() if isinstance(v, str)}, environ_body(environ)
            )

    def _apply(self, environ: dict[str, Any], body: bytes) -> int:
        import sys as _sys

        environ = {
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": _sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.url_scheme": "http",
            **environ,
            "CONTENT_LENGTH": str(len(body)),
        }
        statuses: list[str] = []
        for _ in self.app(environ, lambda status, _headers, _exc=None: statuses.append(status)):
            pass
        return int(statuses[0].split()[0]) if statuses else 500

    # snapshots
    def snapshot(self, reason: str) -> bool:
        """Take a snapshot: the journal moves to a new segment and a forked child pickles the
        backends as they are at that instant (no write is in flight: the write lock is
        held), while this process goes on serving. Waits for the child; True on success."""
        if not self.snapshot_lock.acquire(blocking=False):
            return False
        try:
            started = time.perf_counter()
            with self.write_lock:
                generation = self.journal.generation + 1
                writes = self.writes_since_snapshot
                moto_state.flush_s3_objects()
                self.journal.open(generation)
                self.writes_since_snapshot = 0
                self.last_snapshot_at = time.monotonic()
                meta = {"generation": generation, "writes": writes, "reason": reason}
                pid = self._fork_writer(generation, meta)
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            elapsed = time.perf_counter() - started
            self.last_snapshot_s = elapsed
            path = snapshot_path(self.state_dir, generation)
            if code != 0 or not path.exists():
                logger.error(
                    "moto: snapshot %s failed (exit %s); the journal is kept, nothing is lost",
                    path.name, code,
                )  # fmt: skip
                return False
            self.good_snapshots.append(generation)
            self._prune()
            logger.info(
                "moto: snapshot %s (%s, %.1f MB, %.1fs)",
                path.name, reason, path.stat().st_size / 1e6, elapsed,
            )  # fmt: skip
            self.status["last_snapshot"] = {"name": path.name, "seconds": round(elapsed, 2)}
            return True
        finally:
            self.snapshot_lock.release()

    def _fork_writer(self, generation: int, meta: dict[str, Any]) -> int:
        with warnings.catch_warnings():
            # the child only pickles in-memory objects (no lock is taken: see moto_state)
            # and writes one file, then leaves with os._exit: none of fork's hazards apply
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child
            # its own session: the SIGKILL honcho sends moto's process group 5 s after Ctrl-C
            # does not cut a last snapshot short (the state is consistent either way: an
            # unfinished snapshot is never used, the journal has everything)
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os._exit(self._write_snapshot(generation, meta))
        return pid

    def _write_snapshot(self, generation: int, meta: dict[str, Any]) -> int:
        try:
            moto_state.write_snapshot(self.state_dir, generation, meta)
            return 0
        except BaseException as exc:  # noqa: BLE001 - reported, the journal is kept
            with contextlib.suppress(OSError):
                os.write(2, f"moto: snapshot writer failed: {exc!r}\n".encode())
            return 1

    def _prune(self) -> None:
        """Keep the two newest good snapshots and the journal from the older one on (all of
        it until there are two: a damaged first snapshot still leaves the journal)."""
        keep = self.good_snapshots[-2:]
        self.good_snapshots = keep
        if len(keep) < 2:
            return
        oldest = keep[0]
        for path in self.state_dir.iterdir():
            match = SNAPSHOT_RE.match(path.name) or JOURNAL_RE.match(path.name)
            # and snapshots set aside as damaged, and temporary files of writers that died
            # (never renamed, never used; an old one, not one still being written)
            stale_tmp = path.name.endswith(".tmp") and time.time() - path.stat().st_mtime > 600
            if (match and int(match.group(1)) < oldest) or path.name.endswith(".bad") or stale_tmp:
                path.unlink(missing_ok=True)

    def freeze_loop(self) -> None:
        """Keep every item's frozen bytes current, a little at a time (see
        ``moto_state.patch_lazy_items``), so snapshots mostly copy bytes."""
        while not self.stopping.wait(1.0):
            try:
                moto_state.freeze_items(self.write_lock)
            except Exception as exc:  # noqa: BLE001 - a snapshot then pickles those items
                logger.warning("moto: freezing items failed (%s); retrying", exc)

    def snapshot_loop(self) -> None:
        """A snapshot every ``snapshot_seconds`` with writes, or after ``snapshot_writes``
        writes; never busier than a quarter of one core (4x the last snapshot's time apart)."""
        while not self.stopping.wait(0.5):
            since = time.monotonic() - self.last_snapshot_at
            writes = self.writes_since_snapshot
            due = writes >= self.snapshot_writes or (writes and since >= self.snapshot_seconds)
            if due and since >= 4 * self.last_snapshot_s:
                self.snapshot(f"{writes:,} writes in {since:.0f}s")


def serve(
    port: int,
    state_dir: Path,
    host: str = "127.0.0.1",
    snapshot_seconds: float = SNAPSHOT_SECONDS,
    snapshot_writes: int = SNAPSHOT_WRITES,
) -> None:
    """Serve moto on HOST:PORT with its state loaded from STATE_DIR, kept there until stopped."""
    os.environ.pop("MOTO_ENABLE_RECORDING", None)  # the journal records; moto's recorder not
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    patch_moto()
    moto = LocalMoto(state_dir, snapshot_seconds, snapshot_writes)
    server = make_server(host, port, moto, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="moto-http", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    summary = moto.load()
    moto.warm_up()
    if stop.is_set():  # stopped while loading: nothing new to keep
        server.shutdown()
        return
    moto._set_status("ready", None, ready=True)
    logger.info("moto: serving AWS on http://%s:%d (state in %s)", host, port, state_dir)
    snapshots = threading.Thread(target=moto.snapshot_loop, name="moto-snapshots", daemon=True)
    snapshots.start()
    threading.Thread(target=moto.freeze_loop, name="moto-freezer", daemon=True).start()
    if summary["replayed_writes"]:
        # fold the replayed tail into a snapshot, so the next start does not replay it again
        threading.Thread(target=moto.snapshot, args=("after replay",), daemon=True).start()
    stop.wait()
    moto.stopping.set()
    moto._set_status("stopping", "taking a last snapshot", ready=False)
    server.shutdown()
    with moto.snapshot_lock:  # a periodic snapshot in progress finishes first
        pass
    if moto.writes_since_snapshot:
        moto.snapshot("on stop")
    moto.journal.close()
    logger.info("moto: stopped; state kept in %s", state_dir)
    # everything is on disk: leave without tearing down millions of objects one by one
    # (seconds at 50,000 predictions, past honcho's 5 s before SIGKILL)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


# --- waiting for moto ---------------------------------------------------------------------


def moto_status(endpoint: str, timeout: float = 2) -> dict[str, Any] | None:
    """moto's own status (``/_local/status``); None while it does not answer."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + STATUS_PATH, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_for_moto(
    state_dir: Path | None = None,  # noqa: ARG001 - callers pass it; moto's HTTP signal rules
    timeout: float | None = None,
    endpoint: str | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Wait until moto at ``endpoint`` (``AWS_ENDPOINT_URL``) says it is ready, saying what
    it is waiting for (moto not answering yet; loading a snapshot; replaying n of m writes)
    when that changes and every 15 s. No fixed limit while moto is working on its state;
    ``timeout`` (seconds), when given, bounds the whole wait."""
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    say = say or (lambda message: logger.info(message))
    started = time.monotonic()
    last_said, last_message = 0.0, ""
    while True:
        status = moto_status(endpoint)
        if status and status.get("ready"):
            if last_message:
                say(f"moto at {endpoint} is ready ({time.monotonic() - started:.1f}s)")
            return
        if status is None:
            message = f"waiting for moto at {endpoint} (not answering yet)"
        else:
            detail = f": {status['detail']}" if status.get("detail") else ""
            message = f"waiting for moto at {endpoint}: {status.get('phase')}{detail}"
        now = time.monotonic()
        if message != last_message or now - last_said >= 15:
            say(message)
            last_said, last_message = now, message
        if timeout is not None and now - started > timeout:
            raise TimeoutError(f"moto at {endpoint} not ready after {timeout:.0f}s ({message})")
        time.sleep(0.1)


if __name__ == "__main__":  # pragma: no cover - python -m local moto is the entry point
    serve(int(sys.argv[1]), Path(sys.argv[2]))
