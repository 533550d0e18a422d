"""``python -m training.register``: upload a bundle to the S3 registry as the next ``vN``."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from moderation.errors import BundleError, RegistryError
from moderation.settings import get_settings
from moderation.stores.registry import ModelRegistry
from training.tracking import server_registry, sync_registry_link

app = typer.Typer(add_completion=False, help=__doc__)


def latest_bundle(artifacts_dir: Path) -> Path:
    pointer = artifacts_dir / "bundles" / "LATEST"
    if not pointer.is_file():
        raise BundleError(f"no trained bundle under {artifacts_dir}/bundles: run training first")
    return artifacts_dir / "bundles" / pointer.read_text().strip()


@app.command()
def main(
    bundle: Annotated[Path | None, typer.Option(help="bundle folder (default: latest)")] = None,
    bucket: Annotated[str | None, typer.Option(help="model bucket (MODEL_BUCKET)")] = None,
) -> None:
    """Register a trained bundle; prints the version it was given."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    bucket = bucket or settings.model_bucket
    try:
        entry = ModelRegistry(bucket).register(bundle or latest_bundle(settings.artifacts_dir))
        sync_registry_link(server_registry(settings), entry, bucket)
    except (BundleError, RegistryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"registered {entry.version}: s3://{bucket}/{entry.prefix}")


if __name__ == "__main__":
    app()
