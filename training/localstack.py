"""The local stack behind ``make run``: moto in server mode with durable state, and the
bootstrap that creates every resource from template.yaml and makes sure a model is served.

moto's request recorder appends every request to ``.local/moto_recording.jsonl``; at start
the read-only requests are dropped from it and the rest is replayed, so tables, the registry
and the model survive a restart.
"""

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__)
logger = logging.getLogger("localstack")


@app.callback()
def _logging() -> None:
    """Plain log lines for every command; the AWS SDK and HTTP clients only at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "botocore", "boto3", "werkzeug", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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


@app.command()
def moto(
    port: Annotated[int, typer.Option(envvar="MOTO_PORT")] = 5000,
    state_dir: Annotated[Path, typer.Option(envvar="LOCAL_STATE_DIR")] = Path(".local"),
    host: Annotated[str, typer.Option(envvar="MOTO_HOST", help="0.0.0.0 in containers")] = (
        "127.0.0.1"
    ),
) -> None:
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


@app.command()
def bootstrap(
    state_dir: Annotated[Path, typer.Option(envvar="LOCAL_STATE_DIR")] = Path(".local"),
) -> None:
    """Create the template's tables and bucket, and register + promote a model if none."""
    from moderation.errors import RegistryError
    from moderation.infra import create_resources
    from moderation.registry import ModelRegistry
    from moderation.settings import get_settings

    settings = get_settings()
    wait_for_moto(state_dir)
    created = create_resources(settings)
    logger.info("bootstrap: created %s", ", ".join(created) if created else "nothing (all there)")
    registry = ModelRegistry(settings.model_bucket)
    try:
        entry = registry.resolve(settings.model_alias)
        logger.info("bootstrap: %s is %s, reusing it", settings.model_alias, entry.version)
    except RegistryError:
        entry = registry.register(_local_bundle(settings))
        registry.promote(entry.version, settings.model_alias, force=True)
        logger.info("bootstrap: registered and promoted %s", entry.version)
    port = os.environ.get("API_PORT", "8000")
    logger.info(
        "\n  API        http://127.0.0.1:%s  (OpenAPI docs at /docs), serving %s %s"
        "\n  AWS (moto) %s  tables %s, %s; bucket %s"
        "\n  state      %s (delete it to start from scratch)\n",
        port, entry.model_name, entry.version, os.environ.get("AWS_ENDPOINT_URL", "AWS"),
        settings.predictions_table, settings.cache_table, settings.model_bucket, state_dir,
    )  # fmt: skip


@app.command()
def streams(
    state_dir: Annotated[Path, typer.Option(envvar="LOCAL_STATE_DIR")] = Path(".local"),
    interval: Annotated[float, typer.Option(help="seconds between polls when idle")] = 1.0,
) -> None:
    """Feed the predictions table's stream to the aggregator handler, as Lambda would."""
    import boto3

    from aggregator.handler import handler
    from aggregator.stream_reader import Checkpoints, StreamReader
    from moderation.settings import get_settings

    wait_for_moto(state_dir)
    settings = get_settings()
    dynamodb = boto3.client("dynamodb")
    deadline = time.monotonic() + 120
    while settings.predictions_table not in dynamodb.list_tables()["TableNames"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the predictions table was never created")
        time.sleep(0.5)
    reader = StreamReader(
        settings.predictions_table,
        handler,
        Checkpoints(state_dir / "stream-checkpoints.json"),
        dynamodb,
        boto3.client("dynamodbstreams"),
        context=_LocalContext(),
    )
    logger.info("streams: feeding %s to the aggregator", settings.predictions_table)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        try:
            handled = reader.poll()
        except Exception as exc:  # noqa: BLE001 - keep polling through transient faults
            logger.warning("streams: poll failed (%s); retrying", type(exc).__name__)
            handled = 0
        if not handled:
            stop.wait(interval)


@app.command()
def seed(
    count: Annotated[int, typer.Option(help="comments to send")] = 500,
    feedback_share: Annotated[float, typer.Option(min=0, max=1)] = 0.2,
    repeat_share: Annotated[float, typer.Option(min=0, max=1, help="re-sent comments")] = 0.2,
    review_share: Annotated[float, typer.Option(min=0, max=1, help="queue items decided")] = 0.5,
    api: Annotated[str, typer.Option(envvar="API_URL")] = "http://127.0.0.1:8000",
    seed_value: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Send real comments from DATA_DIR through the API, with feedback and review decisions
    carrying the dataset's true labels, so the aggregates and the dashboard have data."""
    import httpx
    import numpy as np

    from moderation.labels import LABELS
    from moderation.settings import get_settings
    from training.data import load_test

    loaded = load_test(get_settings().data_dir)
    if loaded is None:
        raise typer.BadParameter(f"no test set in {get_settings().data_dir}")
    frame = loaded[0]
    frame = frame[frame["comment_text"].str.strip().str.len().between(1, 10_000)]
    rng = np.random.default_rng(seed_value)
    rows = frame.iloc[rng.choice(len(frame), size=min(count, len(frame)), replace=False)]
    truth = {
        row.comment_text: [name for name in LABELS if getattr(row, name) == 1]
        for row in rows.itertuples()
    }
    texts = list(truth)
    sent = [texts[i] if rng.random() > repeat_share or i == 0 else texts[rng.integers(0, i)]
            for i in range(len(texts))]  # fmt: skip
    stats = {"predictions": 0, "feedback": 0, "reviews": 0, "errors": 0}
    with httpx.Client(base_url=api, timeout=30, headers={"x-api-key": "seed-traffic"}) as client:
        position = 0
        while position < len(sent):
            size = 1 if rng.random() < 0.7 else int(rng.integers(2, 20))
            chunk = sent[position : position + size]
            position += size
            if len(chunk) == 1:
                response = client.post("/predict", json={"comment_text": chunk[0]})
                results = [response.json()] if response.status_code == 200 else []
            else:
                response = client.post("/predict/batch", json={"comments": chunk})
                results = response.json()["results"] if response.status_code == 200 else []
            if response.status_code != 200:
                stats["errors"] += 1
                continue
            stats["predictions"] += len(results)
            for text, result in zip(chunk, results, strict=True):
                if result["decision"] != "review" and rng.random() < feedback_share:
                    labels = truth[text]
                    client.post(
                        "/feedback",
                        json={
                            "request_id": result["request_id"],
                            "correct": sorted(labels) == sorted(result["labels"]),
                            "true_labels": labels,
                        },
                    )
                    stats["feedback"] += 1
        pending = client.get("/reviews", params={"limit": 100}).json()["items"]
        for item in pending[: int(len(pending) * review_share)]:
            labels = truth.get(item["comment_text"] or "", [])
            action = (
                {"action": "relabel", "true_labels": labels} if labels else {"action": "approve"}
            )
            client.post(f"/reviews/{item['request_id']}", json={**action, "moderator": "seed-bot"})
            stats["reviews"] += 1
    logger.info("seed: %s", ", ".join(f"{v} {k}" for k, v in stats.items()))


class _LocalContext:
    function_name = "toxic-moderation-aggregator-local"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:aggregator-local"
    aws_request_id = "local"


def _local_bundle(settings) -> Path:  # noqa: ANN001
    from moderation.errors import BundleError
    from training.model import Hyperparameters
    from training.register import latest_bundle
    from training.train import train

    try:
        bundle = latest_bundle(settings.artifacts_dir)
        logger.info("bootstrap: no model registered; using the trained bundle %s", bundle)
        return bundle
    except BundleError:
        logger.info(
            "bootstrap: no model anywhere; training on %s (a few minutes)", settings.data_dir
        )
        return train(
            settings.data_dir, settings.artifacts_dir / "bundles", Hyperparameters()
        ).bundle_dir


if __name__ == "__main__":
    app()
