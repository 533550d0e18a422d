"""The API's dependencies, as typed aliases routes declare (``service: ServiceDep``)."""

import hashlib
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from moderation.model_holder import ModelHolder
from moderation.service import ModerationService
from moderation.settings import Settings, get_settings
from moderation.stores.aggregates import AggregateStore
from moderation.stores.audit import AuditLog
from moderation.stores.prediction_log import PredictionLog


@lru_cache
def get_service() -> ModerationService:
    settings = get_settings()
    store = PredictionLog(settings.predictions_table, settings.cache_table)
    counts = AggregateStore(settings.aggregates_table)
    audit = AuditLog(settings.audit_table)
    return ModerationService(ModelHolder(settings), store, settings, counts, audit)


# Dependencies are async: FastAPI runs a plain ``def`` dependency in a worker thread, and
# these are trivial; measured, the hops cost ~1 ms a request. Only routes (blocking I/O) hop.
async def service_dependency() -> ModerationService:
    return get_service()


async def settings_dependency() -> Settings:
    return get_settings()


ServiceDep = Annotated[ModerationService, Depends(service_dependency)]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]


async def caller_id(request: Request, settings: SettingsDep) -> str:
    """The API Gateway key identity (Lambda), else a hash of the key the caller sent (local):
    the ``x-api-key`` header, or ``?key=`` as Perspective's clients send it."""
    event = request.scope.get("aws.event") or {}
    identity = (event.get("requestContext") or {}).get("identity") or {}
    if identity.get("apiKeyId"):
        return f"key:{identity['apiKeyId']}"
    key = request.headers.get("x-api-key") or request.query_params.get("key")
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    if settings.require_api_key:
        raise HTTPException(401, "an API key is required (x-api-key header)")
    return "anonymous"


CallerDep = Annotated[str, Depends(caller_id)]


async def blocking(request: Request, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking domain call. Under Lambda (Mangum sets ``aws.event``) a container
    serves one request at a time, so there is no event loop to keep free and the thread hop
    (~0.1-0.2 ms, measured) is skipped; under uvicorn it runs in the thread pool."""
    if "aws.event" in request.scope:
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)
