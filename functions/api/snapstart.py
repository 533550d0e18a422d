"""Lambda SnapStart (``SnapStart: ApplyOn: PublishedVersions`` on the API function in
template.yaml): when a version is published, Lambda runs this code's init once, snapshots the
process, and starts each new execution environment from that snapshot, without importing the
framework or fetching the model again.

Before the snapshot, the served model is fetched, verified, loaded and run once, and one
``GET /health`` goes through Mangum, FastAPI, the request guard and the store's client, so a
restored environment answers its first request without the bundle's download and load or
those layers' first-call set-up.
After each restore, two things a snapshot shares must become the environment's own:

- the model: the snapshot may be hours old, so the alias is read again on the next request
  and a model promoted since is loaded then (``ModelHolder.check_on_next_request``);
- ``random``'s state, which would give every environment restored from one snapshot the
  same retry jitter (``uuid4`` reads the OS's randomness and needs nothing).

boto3's pooled connections from before the snapshot are stale after a restore; urllib3
finds them closed and reconnects. Credentials come from Lambda's container credentials
endpoint under SnapStart, which the SDK refreshes on its own.
"""

import random
from types import SimpleNamespace

from snapshot_restore_py import register_after_restore, register_before_snapshot

from api.deps import get_service
from moderation.errors import ModelUnavailable
from moderation.log import logger

# API Gateway's event for a keyless GET /health, reduced to what Mangum reads
HEALTH_EVENT = {
    "resource": "/health",
    "path": "/health",
    "httpMethod": "GET",
    "headers": {"Accept": "application/json"},
    "multiValueHeaders": {"Accept": ["application/json"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "requestContext": {"httpMethod": "GET", "path": "/health", "identity": {}},
    "body": None,
    "isBase64Encoded": False,
}


@register_before_snapshot
def load_model_into_snapshot() -> None:
    """Load and run the served model and answer one health check; without a model, the
    snapshot is taken anyway and the first request loads it, as without SnapStart."""
    from api.handler import asgi  # the handler module imports this one

    try:
        get_service().model.get().score("SnapStart warm-up comment")
    except ModelUnavailable as exc:
        logger.warning("snapshot taken without a model: %s", exc)
    asgi(HEALTH_EVENT, SimpleNamespace())


@register_after_restore
def make_restored_state_own() -> None:
    get_service().model.check_on_next_request()
    random.seed()
