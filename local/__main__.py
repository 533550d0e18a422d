"""The local stack's processes (``make run`` starts them from local/Procfile):
``python -m local moto|bootstrap|api|streams|webhooks|seed|reset|redrive-webhooks``.

Each command imports only what it runs (training, pandas and scikit-learn take seconds to
import, and every process of ``make run`` starts at once on the same cores)."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from local import moto_server

app = typer.Typer(add_completion=False, help=__doc__)
StateDir = Annotated[Path, typer.Option(envvar="LOCAL_STATE_DIR", help="the local state folder")]


@app.callback()
def _logging() -> None:
    """Plain log lines for every command; the AWS SDK and HTTP clients only at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "botocore", "boto3", "werkzeug", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def moto(
    port: Annotated[int, typer.Option(envvar="MOTO_PORT")] = 5000,
    state_dir: StateDir = Path(".local"),
    host: Annotated[str, typer.Option(envvar="MOTO_HOST", help="0.0.0.0 in containers")] = (
        "127.0.0.1"
    ),
    snapshot_seconds: Annotated[
        float, typer.Option(envvar="MOTO_SNAPSHOT_SECONDS", help="snapshot this often (writes)")
    ] = moto_server.SNAPSHOT_SECONDS,
    snapshot_writes: Annotated[
        int, typer.Option(envvar="MOTO_SNAPSHOT_WRITES", help="... or after this many writes")
    ] = moto_server.SNAPSHOT_WRITES,
) -> None:
    """Run moto's server (loopback by default) with its state kept in STATE_DIR: the newest
    snapshot plus the writes journaled since, loaded at start."""
    moto_server.serve(port, state_dir, host, snapshot_seconds, snapshot_writes)


@app.command()
def bootstrap(state_dir: StateDir = Path(".local")) -> None:
    """Create the template's tables and bucket, and register + promote a model if none."""
    from local import bootstrap as bootstrap_module

    bootstrap_module.bootstrap(state_dir)


@app.command()
def api(
    port: Annotated[int, typer.Option(envvar="API_PORT")] = 8000,
    host: Annotated[str, typer.Option(help="0.0.0.0 in containers")] = "127.0.0.1",
    state_dir: StateDir = Path(".local"),
) -> None:
    """The bootstrap, then the API under uvicorn, in one process: the API's modules are
    imported while moto loads its state, and no second interpreter starts after it."""
    import uvicorn

    from api.main import app as api_app
    from local import bootstrap as bootstrap_module

    bootstrap_module.bootstrap(state_dir)
    uvicorn.run(api_app, host=host, port=port, access_log=False)


@app.command()
def streams(
    state_dir: StateDir = Path(".local"),
    interval: Annotated[float, typer.Option(help="seconds between polls when idle")] = 1.0,
) -> None:
    """Feed the predictions table's stream to the aggregator handler, as Lambda would."""
    from local import streams as streams_module

    streams_module.run(state_dir, interval)


@app.command()
def webhooks(
    state_dir: StateDir = Path(".local"),
    interval: Annotated[float, typer.Option(help="seconds between passes when idle")] = 1.0,
) -> None:
    """Dispatch webhook events from the predictions stream and deliver them, as the two
    webhook Lambdas do."""
    from local import webhooks as webhooks_module

    webhooks_module.run(state_dir, interval)


@app.command("redrive-webhooks")
def redrive_webhooks() -> None:
    """Send the webhook deliveries in the dead-letter queue back to the queue (their event
    ids kept), as WebhookRedriveFunction does on AWS."""
    import boto3

    from local import webhooks as webhooks_module
    from webhooks.redrive import redrive

    urls = webhooks_module.queue_urls(boto3.client("sqs"))
    moved = redrive(urls["WebhookDeadLetterQueue"], urls["WebhookQueue"])
    typer.echo(f"moved {moved} webhook deliveries from the dead-letter queue back to the queue")


@app.command()
def reset(
    state_dir: StateDir = Path(".local"),
    endpoint: Annotated[str, typer.Option(envvar="AWS_ENDPOINT_URL")] = "http://127.0.0.1:5000",
) -> None:
    """Delete the local state (tables, registry, stream positions) to start from scratch;
    refused while moto is serving it. Trained bundles (artifacts/) stay."""
    import shutil

    if moto_server.moto_status(endpoint) is not None:
        raise typer.Exit(
            typer.echo(f"moto is running at {endpoint}: stop make run first", err=True) or 1
        )
    if state_dir.exists():
        shutil.rmtree(state_dir)
        typer.echo(f"removed {state_dir}: the next make run starts from scratch")
    else:
        typer.echo(f"{state_dir} does not exist: nothing to reset")


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
    from local.seed import seed as send_seed_traffic

    send_seed_traffic(count, feedback_share, repeat_share, review_share, api, seed_value)


if __name__ == "__main__":
    app()
