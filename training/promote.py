"""``python -m training.promote --version vN --alias production``: move an alias in S3."""

import logging
from typing import Annotated

import typer

from moderation.errors import RegistryError
from moderation.settings import get_settings
from moderation.stores.registry import ModelRegistry
from training.tracking import server_registry, sync_registry_alias

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    version: Annotated[str, typer.Option(help="registered version, e.g. v3")],
    alias: Annotated[str, typer.Option(help="production or staging")] = "production",
    force: Annotated[bool, typer.Option(help="promote even with a lower val ROC-AUC")] = False,
    bucket: Annotated[str | None, typer.Option(help="model bucket (MODEL_BUCKET)")] = None,
) -> None:
    """Point an alias at a version; refuses a worse model than production unless --force."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    try:
        record = ModelRegistry(bucket or settings.model_bucket).promote(version, alias, force)
        sync_registry_alias(server_registry(settings), record)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    previous = record.previous_version or "nothing"
    typer.echo(f"{alias} -> {version} (was {previous})")


if __name__ == "__main__":
    app()
