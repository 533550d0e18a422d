"""Domain errors, one place. The API maps them to HTTP in one handler."""


class ModerationError(Exception):
    """Base of every error the core raises on purpose."""


class DataError(ModerationError):
    """Training data is missing or malformed. The message names the file and the problem."""


class BundleError(ModerationError):
    """A model bundle is missing, corrupt (sha256 mismatch) or of an unknown format."""


class RegistryError(ModerationError):
    """The S3 registry has no such version or alias, or refuses a change."""


class PromotionRefused(RegistryError):
    """A promotion would lower the production model's validation mean ROC-AUC."""


class ModelUnavailable(ModerationError):
    """No model could be loaded; the API answers 503 and /health says why."""


class StoreUnavailable(ModerationError):
    """The prediction store still failed after retries; the API answers 503 + Retry-After."""


class NotFound(ModerationError):
    """A request id (or other key) that the store does not hold."""


class Conflict(ModerationError):
    """A write that contradicts one already recorded (e.g. a review decided twice)."""


class PreconditionFailed(ModerationError):
    """A conditional write whose condition no longer holds (a stale ``If-Match``)."""


class Forbidden(ModerationError):
    """A caller without the rights the request needs (e.g. a policy write without an admin key)."""


class IdempotencyMismatch(ModerationError):
    """An Idempotency-Key reused with a different request body."""


class InvalidCursor(ModerationError):
    """A pagination cursor this API did not issue (or one that no longer fits the query)."""
