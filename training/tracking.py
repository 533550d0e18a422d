"""Weights & Biases tracking: online with ``WANDB_API_KEY``, else real offline run folders
that ``wandb sync`` uploads later. Registry calls that need the server are skipped offline
with a clear log line; the S3 registry is what serving reads either way."""

import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Protocol

from moderation.settings import Settings
from moderation.stores.registry import AliasRecord, RegistryEntry

logger = logging.getLogger(__name__)

REGISTERED_MODEL = "toxic-comment"


def git_state() -> tuple[str | None, bool | None]:
    """Current commit and whether the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None


def start_run(settings: Settings, job_type: str, config: dict[str, Any]) -> Any:
    """A W&B run: online when an API key is set, otherwise offline in ``settings.wandb_dir``."""
    import wandb  # heavy import, only for the CLIs that track

    if settings.wandb_online:
        os.environ["WANDB_API_KEY"] = settings.wandb_api_key.get_secret_value()
    mode = "online" if settings.wandb_online else "offline"
    settings.wandb_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=settings.wandb_project,
        entity=settings.wandb_entity,
        job_type=job_type,
        config=config,
        mode=mode,
        dir=str(settings.wandb_dir),
        settings=wandb.Settings(silent=True, console="off"),
    )
    logger.info("W&B run %s (%s) in %s", run.id, mode, run.dir)
    return run


def log_model_artifact(run: Any, bundle_dir: Path, name: str, metadata: dict[str, Any]) -> None:
    import wandb

    artifact = wandb.Artifact(name=name, type="model", metadata=metadata)
    artifact.add_dir(str(bundle_dir))
    run.log_artifact(artifact)


class ServerRegistry(Protocol):
    """The W&B calls that need the server; a substitute stands in for it in tests."""

    def link(self, entry: RegistryEntry, uri: str) -> None: ...

    def set_alias(self, entry: RegistryEntry, alias: str) -> None: ...


class WandbServerRegistry:
    """Reference artifacts linked to the registered model ``toxic-comment`` (online only)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def link(self, entry: RegistryEntry, uri: str) -> None:
        import wandb

        run = start_run(self.settings, "register", {"version": entry.version, "uri": uri})
        artifact = wandb.Artifact(
            REGISTERED_MODEL, type="model", metadata=entry.model_dump(mode="json")
        )
        artifact.add_reference(uri, checksum=False)
        logged = run.log_artifact(artifact, aliases=[f"registry-{entry.version}"])
        run.link_artifact(logged, f"model-registry/{REGISTERED_MODEL}")
        run.finish()

    def set_alias(self, entry: RegistryEntry, alias: str) -> None:
        import wandb

        path = f"{self.settings.wandb_project}/{REGISTERED_MODEL}:registry-{entry.version}"
        if self.settings.wandb_entity:
            path = f"{self.settings.wandb_entity}/{path}"
        artifact = wandb.Api().artifact(path)
        if alias not in artifact.aliases:
            artifact.aliases.append(alias)
            artifact.save()


def server_registry(settings: Settings) -> ServerRegistry | None:
    if settings.wandb_online:
        return WandbServerRegistry(settings)
    logger.warning(
        "W&B is offline (no WANDB_API_KEY): skipping the W&B model registry; "
        "the S3 registry in s3://%s is authoritative",
        settings.model_bucket,
    )
    return None


def sync_registry_link(registry: ServerRegistry | None, entry: RegistryEntry, bucket: str) -> None:
    if registry is not None:
        registry.link(entry, f"s3://{bucket}/{entry.prefix}")


def sync_registry_alias(registry: ServerRegistry | None, record: AliasRecord) -> None:
    if registry is not None:
        registry.set_alias(record.entry, record.alias)
