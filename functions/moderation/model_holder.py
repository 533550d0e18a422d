"""The served model, loaded once per container from the S3 registry and kept current."""

import math
import threading
import time

from moderation.errors import BundleError, ModelUnavailable, RegistryError
from moderation.log import logger
from moderation.model.bundle import load_bundle
from moderation.model.scorer import Scorer
from moderation.settings import Settings
from moderation.stores.registry import ModelRegistry, RegistryEntry


class ModelHolder:
    """Loads the served model once per container; after a failure, retries at most every
    ``retry_seconds`` so a model promoted later is picked up without a restart.

    A warm container re-reads the alias every ``model_refresh_seconds``: a newly promoted
    version is loaded and swapped in; one that fails to load (corrupt, mismatched) is refused
    with a logged error and the version already loaded keeps serving."""

    def __init__(
        self, settings: Settings, registry: ModelRegistry | None = None, retry_seconds: float = 30
    ) -> None:
        self.settings = settings
        self.registry = registry or ModelRegistry(settings.model_bucket)
        self.retry_seconds = retry_seconds
        self._scorer: Scorer | None = None
        self._error: str | None = None
        self._failed_at = 0.0
        self._checked_at = 0.0
        self._refused: str | None = None
        self._recheck = False
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        return self.settings.model_version or self.settings.model_alias

    def get(self) -> Scorer:
        if self._scorer is not None:
            if self._refresh_due() and self._lock.acquire(blocking=False):
                try:
                    self._refresh()
                finally:
                    self._lock.release()
            return self._scorer
        with self._lock:
            if self._scorer is None and time.monotonic() - self._failed_at >= self.retry_seconds:
                self._load()
        if self._scorer is None:
            raise ModelUnavailable(self._error or "model not loaded")
        return self._scorer

    def check_on_next_request(self) -> None:
        """Re-read the alias on the next ``get``, even where periodic re-reads are off, and
        retry a failed load at once: after a SnapStart restore, the snapshot's model may no
        longer be the promoted one."""
        self._recheck, self._failed_at = True, -math.inf

    def _refresh_due(self) -> bool:
        every = self.settings.model_refresh_seconds
        return self._recheck or (bool(every) and time.monotonic() - self._checked_at >= every)

    def _download(self, entry: RegistryEntry) -> Scorer:
        folder = self.registry.download(entry, self.settings.model_cache_dir)
        return load_bundle(folder, entry.bundle_sha256, verified=True)

    def _load(self) -> None:
        try:
            entry = self.registry.resolve(self.target)
            self._scorer = self._download(entry)
            self._checked_at = time.monotonic()
            self._error = None
            logger.info("serving model %s %s", entry.model_name, entry.version)
        except (RegistryError, BundleError) as exc:
            self._error = f"no model for {self.target!r}: {exc}"
        except Exception as exc:  # noqa: BLE001 - S3 unreachable etc.: say why, never crash
            self._error = f"no model for {self.target!r}: {type(exc).__name__}: {exc}"
        if self._scorer is None:
            self._failed_at = time.monotonic()
            logger.error(self._error)

    def _refresh(self) -> None:
        self._checked_at, self._recheck = time.monotonic(), False
        current = self._scorer.version if self._scorer else None
        try:
            entry = self.registry.resolve(self.target)
        except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep serving
            logger.warning("could not re-read %r, still serving %s: %s", self.target, current, exc)
            return
        if entry.version in (current, self._refused):
            return
        try:
            scorer = self._download(entry)
        except Exception as exc:  # noqa: BLE001 - a bad bundle never replaces a good one
            self._refused = entry.version
            logger.error(
                "refused model %s behind %r (%s: %s); still serving %s",
                entry.version, self.target, type(exc).__name__, exc, current,
            )  # fmt: skip
            return
        self._scorer, self._refused = scorer, None
        logger.info("now serving model %s %s (was %s)", entry.model_name, entry.version, current)

    def status(self) -> tuple[Scorer | None, str | None]:
        try:
            return self.get(), None
        except ModelUnavailable as exc:
            return None, str(exc)
