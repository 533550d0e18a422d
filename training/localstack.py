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


def compact_recording(recording: Path) -> tuple[int, int]:
    """Keep only the requests that change state; returns (before, after) line counts."""
    if not recording.exists():
        return 0, 0
    lines = recording.read_text().splitlines()
    kept = [line for line in lines if line.strip() and _is_write(json.loads(line))]
    tmp = recording.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(recording)
    return len(lines), len(kept)


@app.command()
def moto(
    port: Annotated[int, typer.Option(envvar="MOTO_PORT")] = 5000,
    state_dir: Annotated[Path, typer.Option(envvar="LOCAL_STATE_DIR")] = Path(".local"),
) -> None:
    """Run moto's server on 127.0.0.1 with its state replayed from STATE_DIR."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access lines
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "moto.ready"
    ready.unlink(missing_ok=True)
    recording = state_dir / "moto_recording.jsonl"
    before, after = compact_recording(recording)
    os.environ["MOTO_ENABLE_RECORDING"] = "True"  # read by moto at import
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording.resolve())
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    if after:
        started = time.perf_counter()
        requests.post(f"http://127.0.0.1:{port}/moto-api/recorder/replay-recording", timeout=600)
        logger.info(
            "moto: replayed %d recorded writes (of %d requests) in %.1fs",
            after, before, time.perf_counter() - started,
        )  # fmt: skip
    ready.write_text(str(os.getpid()))
    logger.info("moto: serving AWS on http://127.0.0.1:%d (state in %s)", port, state_dir)
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
    logging.basicConfig(level=logging.INFO, format="%(message)s")
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
    logging.basicConfig(level=logging.INFO, format="%(message)s")
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
