"""Durable state for the local moto server: snapshots of moto's backends, and a journal of the
writes served since the newest one.

Layout in the state folder (``LOCAL_STATE_DIR``), ``N`` a generation number:

- ``moto-snapshot-N.pickle``: moto's backends as they were when journal segment ``N``
  began (every write of the segments before ``N`` applied). Written to a temporary file,
  fsynced, then renamed into place: a snapshot is whole or absent. A header holds its length
  and CRC-32, so a truncated or damaged one is recognised.
- ``moto-journal-N.jsonl``: every write served after snapshot ``N`` was taken, one JSON line
  per request (the WSGI request itself), appended and flushed to the OS before the request
  is applied, and so before it is answered.

At start the newest snapshot that reads back whole is loaded and the journal segments from
its generation on are replayed in order. After a snapshot the files older than the one before
it are deleted, so a damaged newest snapshot still leaves one to fall back on, and the
restart cost is one snapshot load plus a short journal tail, however long the stack has run.

The snapshot holds each moto backend's attributes (``backend.__dict__``); objects of a
backend are pickled as they are, except: an item's attributes and a stream record are stored
as bytes (an item's decoded when first read, see ``patch_lazy_items``; a record frozen when
created, see ``patch_stream_records``), so a load creates a handful of objects per item
instead of some thirty; moto's attribute dict (``LimitedSizeDict``) is rebuilt without
re-checking the item size per attribute (an O(n²) unpickle otherwise); and S3 objects are
read without their lock or file offset (the snapshot is written by a forked child).
DynamoDB Streams' own backend holds only shard iterators, which expire anyway, and is left
out.
"""

import base64
import contextlib
import copyreg
import gc
import importlib
import io
import json
import logging
import os
import pickle
import re
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("local.moto")

SNAPSHOT_MAGIC = b"TOXMOTO1"
HEADER = struct.Struct(">8sQI")  # magic, payload length, CRC-32 of the payload
SNAPSHOT_FORMAT = 1
SNAPSHOT_RE = re.compile(r"^moto-snapshot-(\d{6,})\.pickle$")
JOURNAL_RE = re.compile(r"^moto-journal-(\d{6,})\.jsonl$")
LEGACY_RECORDING = "moto_recording.jsonl"
#: backends not snapshotted: DynamoDB Streams keeps only shard iterators (moto never drops
#: them; the streams themselves live in the DynamoDB tables)
SKIPPED_BACKENDS = {"moto.dynamodbstreams.models"}

READ_ONLY_TARGETS = {
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams",
    "DescribeContinuousBackups", "ListTagsOfResource", "TransactGetItems", "DescribeLimits",
    "DescribeEndpoints", "GetQueueUrl", "GetQueueAttributes", "ListQueues",
}  # fmt: skip


def is_write(method: str, target: str | None) -> bool:
    """Whether a request may change moto's state (and so must be journaled)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return (target or "").rsplit(".", 1)[-1] not in READ_ONLY_TARGETS


def snapshot_path(directory: Path, generation: int) -> Path:
    return directory / f"moto-snapshot-{generation:06d}.pickle"


def journal_path(directory: Path, generation: int) -> Path:
    return directory / f"moto-journal-{generation:06d}.jsonl"


def generations(directory: Path, pattern: re.Pattern) -> list[int]:
    found = (pattern.match(p.name) for p in directory.iterdir()) if directory.exists() else ()
    return sorted(int(m.group(1)) for m in found if m)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the journal -------------------------------------------------------------------------


def journal_entry(environ: dict[str, Any], body: bytes) -> str:
    """One request as a journal line: the WSGI environ's plain values and the body."""
    recorded = {
        k: v for k, v in environ.items() if isinstance(v, str) or (k.startswith("moto.") and v)
    }
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return json.dumps({"environ": recorded, "body": text, "b64": encoded}) + "\n"


def entry_request(entry: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A journal line back as (environ, body); also reads moto's own recorder lines (the
    ``moto_recording.jsonl`` of earlier versions of the local stack)."""
    body_text = entry.get("body") or ""
    if "environ" in entry:
        body = base64.b64decode(body_text) if entry.get("b64") else body_text.encode("utf-8")
        return dict(entry["environ"]), body
    from urllib.parse import urlsplit

    from werkzeug.test import EnvironBuilder

    body = base64.b64decode(body_text) if entry.get("body_encoded") else body_text.encode()
    url = urlsplit(entry["url"])
    headers = {
        k: v for k, v in (entry.get("headers") or {}).items() if k.lower() != "transfer-encoding"
    }
    builder = EnvironBuilder(
        path=url.path, query_string=url.query, method=entry["method"], headers=headers, data=body
    )
    environ = builder.get_environ()
    builder.close()
    return {k: v for k, v in environ.items() if isinstance(v, str)}, body


@dataclass
class JournalRead:
    entries: list[dict[str, Any]] = field(default_factory=list)
    damaged: int = 0  # lines that are not a whole record, not at the end
    torn_tail: bool = False  # the last line cut short: a write the process died writing


def read_journal(path: Path) -> JournalRead:
    """Every whole record of a journal segment. A damaged line is skipped and counted; a
    last line without its newline is a write cut short by a crash, never applied (a record
    is written whole before its request is applied) and so never answered."""
    result = JournalRead()
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
    for line in lines:
        if not line.strip():
            continue
        try:
            result.entries.append(json.loads(line))
        except ValueError:
            result.damaged += 1
    if tail.strip():
        try:
            result.entries.append(json.loads(tail))
        except ValueError:
            result.torn_tail = True
    return result


class Journal:
    """The open journal segment: one line per write, flushed to the OS before the write is
    applied, so a killed process loses nothing it answered. The file is created with its
    first write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = -1
        self._file: io.TextIOWrapper | None = None

    def open(self, generation: int) -> None:
        self.close()
        self.generation = generation

    def append(self, line: str) -> None:
        if self._file is None:
            path = journal_path(self.directory, self.generation)
            self._file = path.open("a", encoding="utf-8")
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# --- capturing and restoring moto's backends ------------------------------------------------


def _limited_size_dict(items: dict) -> Any:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    rebuilt = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(rebuilt, items)  # the C update: no per-attribute size re-check
    return rebuilt


def _reduce_limited_size_dict(value: dict) -> tuple:
    return _limited_size_dict, (dict(value),)


def _new(cls: type) -> Any:
    return cls.__new__(cls)


def _s3_value(key: Any) -> bytes:
    """An S3 object's bytes without its lock or its file offset: positional reads of the
    (flushed) spool file, which the parent process shares with a forked child."""
    spool = key._value_buffer
    inner = spool._file
    if isinstance(inner, io.BytesIO):
        return inner.getvalue()
    descriptor = inner.fileno()
    size = os.fstat(descriptor).st_size
    return os.pread(descriptor, size, 0)


def _reduce_s3_key(key: Any) -> tuple:
    state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
    state["value"] = _s3_value(key)
    return _new, (type(key),), state


def flush_s3_objects() -> None:
    """Push every S3 object's buffered bytes to its spool file (before a fork: the child
    reads them positionally, see ``_s3_value``). moto tracks every object it created."""
    module = sys.modules.get("moto.s3.models")
    if module is None:
        return
    for key in list(module.FakeKey.instances_tracked):
        spool = getattr(key, "_value_buffer", None)
        if spool is None or getattr(key, "disposed", False) or spool.closed:
            continue
        with key.lock:
            spool.flush()


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH.get("table") or _dispatch_table()
    pickler.dump(value)
    return buffer.getvalue()


def _reduce_item(item: Any) -> tuple:
    """An item with its attributes as bytes: the bytes it already holds (frozen by
    ``freeze_items``, or as loaded), else pickled now."""
    state = dict(item.__dict__)
    attrs = state.pop("_attrs", None)
    if "_frozen_attrs" not in state:
        if attrs is None:
            attrs = state.pop("attrs", None)  # an item made before the patch
        if attrs is not None:
            state["_frozen_attrs"] = _dumps(attrs)
    return _new, (type(item),), state


_WRITING = threading.local()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark this thread as applying a write: items it reads may change, so they lose their
    frozen bytes (``patch_lazy_items``)."""
    _WRITING.active = True
    try:
        yield
    finally:
        _WRITING.active = False


def patch_lazy_items() -> None:
    """An item's attributes as bytes beside (or instead of) the live dict.

    - A snapshot's items load with their bytes alone, decoded the first time anything reads
      them: a restart creates a handful of objects per item instead of some thirty, and the
      first Scan or index Query pays the rest, once.
    - Bytes stay valid while only reads touch the item; a write request that reads an item
      drops them (``writing``). ``freeze_items`` refreezes changed and new items in the
      background, so a snapshot mostly copies bytes: its cost hardly grows with the data.
    """
    from moto.dynamodb.models.dynamo_type import Item

    if getattr(Item, "_toxic_patched", False):
        return

    def get_attrs(self: Any) -> Any:
        state = self.__dict__
        attrs = state.get("_attrs")
        if attrs is None:
            frozen = state.get("_frozen_attrs")
            if frozen is None:  # decoded meanwhile by another thread, or made before the patch
                attrs = state["_attrs"] if "_attrs" in state else state["attrs"]
            else:
                # two threads may decode at once: the first result stored is the one every
                # reader (and writer) gets
                attrs = state.setdefault("_attrs", pickle.loads(frozen))  # noqa: S301
        if getattr(_WRITING, "active", False):
            state.pop("_frozen_attrs", None)
        return attrs

    def set_attrs(self: Any, value: Any) -> None:
        self.__dict__["_attrs"] = value
        self.__dict__.pop("_frozen_attrs", None)

    Item.attrs = property(get_attrs, set_attrs)
    Item._toxic_patched = True


def freeze_items(lock: threading.Lock, chunk: int = 200) -> int:
    """Give every DynamoDB item that has none its frozen bytes, ``chunk`` items per hold of
    the write lock (no write runs meanwhile, so none changes under the pickler); returns how
    many were frozen."""
    module = sys.modules.get("moto.dynamodb.models")
    if module is None:
        return 0
    with lock:
        pending = []
        for account in dict.values(module.dynamodb_backends):
            for backend in dict.values(account):
                for table in list(backend.tables.values()):
                    for bucket in list(table.items.values()):
                        values = bucket.values() if isinstance(bucket, dict) else (bucket,)
                        pending += [i for i in values if "_frozen_attrs" not in i.__dict__]
    frozen = 0
    for offset in range(0, len(pending), chunk):
        with lock:
            for item in pending[offset : offset + chunk]:
                state = item.__dict__
                if "_frozen_attrs" not in state and "_attrs" in state:
                    state["_frozen_attrs"] = _dumps(state["_attrs"])
                    frozen += 1
    return frozen


_DISPATCH: dict[str, dict] = {}


def _new_rlock() -> Any:
    return threading.RLock()


def _new_lock() -> Any:
    return threading.Lock()


def _reduce_rlock(_lock: Any) -> tuple:
    """A lock is pickled as a fresh one (SQS queues hold them): a snapshot is taken with no
    request in flight, so no lock is held that a loaded state would need to be held."""
    return (_new_rlock, ())


def _reduce_lock(_lock: Any) -> tuple:
    return (_new_lock, ())


def _dispatch_table() -> dict:
    """The reducers above (built once per process: a snapshot pickles items one by one)."""
    if "table" in _DISPATCH:
        return _DISPATCH["table"]
    table = copyreg.dispatch_table.copy()
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict

    table[LimitedSizeDict] = _reduce_limited_size_dict
    table[type(threading.RLock())] = _reduce_rlock
    table[type(threading.Lock())] = _reduce_lock
    if getattr(Item, "_toxic_patched", False):
        table[Item] = _reduce_item
    if "moto.s3.models" in sys.modules:
        table[sys.modules["moto.s3.models"].FakeKey] = _reduce_s3_key
        _DISPATCH["table"] = table  # complete only once S3's models are loaded
    return table


def patch_stream_records() -> None:
    """Freeze each DynamoDB stream record into bytes when it is created (as DynamoDB's
    stream images are: an image never changes), decoded when it is read. A snapshot then
    writes the bytes as they are, and a load creates one object per record instead of a
    tree of dicts; most records are never read again after the stream runner has."""
    from moto.dynamodb.models.table import StreamRecord

    if getattr(StreamRecord, "_toxic_patched", False):
        return
    original_init = StreamRecord.__init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original_init(self, *args, **kwargs)
        live = self.__dict__.pop("_live")
        self.__dict__["_frozen"] = pickle.dumps(live, protocol=pickle.HIGHEST_PROTOCOL)

    def get_record(self: Any) -> dict[str, Any]:
        state = self.__dict__
        if "_frozen" in state:
            return pickle.loads(state["_frozen"])  # noqa: S301 - frozen by this process
        return state["_live"] if "_live" in state else state["record"]  # made before the patch

    def set_record(self: Any, value: dict[str, Any]) -> None:
        self.__dict__["_live"] = value

    StreamRecord.__init__ = __init__
    StreamRecord.record = property(get_record, set_record)
    StreamRecord._toxic_patched = True


def _backend_dicts() -> Iterator[tuple[str, str, Any]]:
    """(module, attribute, BackendDict) for every moto backend in use."""
    from moto.core.base_backend import BackendDict

    for backends in list(BackendDict._instances):
        module_name = backends.backend.__module__
        if module_name in SKIPPED_BACKENDS:
            continue
        module = sys.modules[module_name]
        name = next((n for n, v in vars(module).items() if v is backends), None)
        if name is not None:
            yield module_name, name, backends


def capture() -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Every backend's attributes, keyed by (module, BackendDict name, account, region)."""
    state = {}
    for module, name, backends in _backend_dicts():
        for account, regions in dict.items(backends):
            for region, backend in dict.items(regions):
                state[(module, name, account, region)] = backend.__dict__
    return state


def restore(state: dict[tuple[str, str, str, str], dict[str, Any]]) -> None:
    for (module, name, account, region), attributes in state.items():
        backends = getattr(importlib.import_module(module), name)
        backends[account][region].__dict__.update(attributes)


def write_snapshot(directory: Path, generation: int, meta: dict[str, Any]) -> int:
    """Pickle moto's backends into ``moto-snapshot-<generation>`` atomically (temporary file,
    fsync, rename, fsync of the folder); returns its size in bytes."""
    final = snapshot_path(directory, generation)
    temporary = final.with_name(final.name + ".tmp")
    gc.disable()  # nothing is freed meanwhile that would be worth a collection
    try:
        with temporary.open("wb") as file:
            file.write(b"\0" * HEADER.size)
            checksum = _ChecksumWriter(file)
            pickler = pickle.Pickler(checksum, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.dispatch_table = _dispatch_table()
            pickler.dump({"format": SNAPSHOT_FORMAT, "meta": meta, "backends": capture()})
            file.seek(0)
            file.write(HEADER.pack(SNAPSHOT_MAGIC, checksum.length, checksum.crc))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        fsync_directory(directory)
    finally:
        gc.enable()
        temporary.unlink(missing_ok=True)
    return HEADER.size + checksum.length


class _ChecksumWriter:
    def __init__(self, file: Any) -> None:
        self.file, self.crc, self.length = file, 0, 0

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        return self.file.write(data)


class SnapshotError(Exception):
    """A snapshot that cannot be used (truncated, damaged, unreadable)."""


def read_snapshot(path: Path) -> dict[str, Any]:
    """A snapshot's content, checked whole against its header before it is unpickled."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise SnapshotError(f"{len(data)} bytes, shorter than its header")
    magic, length, crc = HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError("not a snapshot (bad header)")
    payload = memoryview(data)[HEADER.size :]
    if len(payload) != length:
        raise SnapshotError(f"truncated: {len(payload):,} of {length:,} bytes")
    if zlib.crc32(payload) != crc:
        raise SnapshotError("damaged: checksum mismatch")
    gc.disable()  # millions of new objects, none garbage: no collection pass is useful
    try:
        content = pickle.loads(payload)  # noqa: S301 - our own file, checked above
    except Exception as exc:  # noqa: BLE001 - e.g. written by another moto version
        raise SnapshotError(f"unreadable ({type(exc).__name__}: {exc})") from exc
    finally:
        gc.enable()
    if not isinstance(content, dict) or content.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError("unknown snapshot format")
    return content
