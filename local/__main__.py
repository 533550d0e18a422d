"""The local stack's processes (``make run`` starts them from local/Procfile):
``python -m local moto|bootstrap|streams|seed``."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from local import bootstrap as bootstrap_module
from local import moto_server
from local import streams as streams_module
from local.seed import seed as send_seed_traffic

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
) -> None:
    """Run moto's server (loopback by default) with its state replayed from STATE_DIR."""
    moto_server.serve(port, state_dir, host)


@app.command()
def bootstrap(state_dir: StateDir = Path(".local")) -> None:
    """Create the template's tables and bucket, and register + promote a model if none."""
    bootstrap_module.bootstrap(state_dir)


@app.command()
def streams(
    state_dir: StateDir = Path(".local"),
    interval: Annotated[float, typer.Option(help="seconds between polls when idle")] = 1.0,
) -> None:
    """Feed the predictions table's stream to the aggregator handler, as Lambda would."""
    streams_module.run(state_dir, interval)


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
    send_seed_traffic(count, feedback_share, repeat_share, review_share, api, seed_value)


if __name__ == "__main__":
    app()
