"""The FastAPI application. Routes validate, call the domain service and shape the response."""

import hashlib
import logging
import time
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import errors
from api.schemas import (
    BatchCreate,
    BatchPublic,
    ErrorPublic,
    FeedbackCreate,
    FeedbackPublic,
    HealthPublic,
    ModelCard,
    ModelInfo,
    PredictCreate,
    PredictionPublic,
    ReviewDecisionCreate,
    ReviewDecisionPublic,
    ReviewItem,
    ReviewPage,
)
from moderation.service import ModelHolder, ModerationService, Prediction, PredictOptions
from moderation.settings import Settings, get_settings
from moderation.store import PredictionStore

logger = Logger(service="toxic-moderation-api")
# The AWS SDK logs whole request bodies at DEBUG, comment text included: never let it.
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)


@lru_cache
def get_service() -> ModerationService:
    settings = get_settings()
    store = PredictionStore(settings.predictions_table, settings.cache_table)
    return ModerationService(ModelHolder(settings), store, settings)


# Dependencies are async: FastAPI runs a plain ``def`` dependency in a worker thread, and
# these are trivial; measured, the hops cost ~1 ms a request. Only routes (blocking I/O) hop.
async def service_dependency() -> ModerationService:
    return get_service()


async def settings_dependency() -> Settings:
    return get_settings()


ServiceDep = Annotated[ModerationService, Depends(service_dependency)]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]


async def caller_id(request: Request, settings: SettingsDep) -> str:
    """The API Gateway key identity (Lambda), else a hash of the x-api-key header (local)."""
    event = request.scope.get("aws.event") or {}
    identity = (event.get("requestContext") or {}).get("identity") or {}
    if identity.get("apiKeyId"):
        return f"key:{identity['apiKeyId']}"
    header = request.headers.get("x-api-key")
    if header:
        return "key:" + hashlib.sha256(header.encode()).hexdigest()[:16]
    if settings.require_api_key:
        raise errors.StarletteHTTPException(401, "an API key is required (x-api-key header)")
    return "anonymous"


CallerDep = Annotated[str, Depends(caller_id)]


async def blocking(request: Request, function: Any, *args: Any) -> Any:
    """Run a blocking domain call. Under Lambda (Mangum sets ``aws.event``) a container
    serves one request at a time, so there is no event loop to keep free and the thread hop
    (~0.1-0.2 ms, measured) is skipped; under uvicorn it runs in the thread pool."""
    if "aws.event" in request.scope:
        return function(*args)
    return await run_in_threadpool(function, *args)


def _routed(scope: dict) -> bool:
    """Whether a route takes this method at this path: the router answers the rest (404,
    405), rather than a 415 that would tell a ``PUT /health`` caller to change its body."""
    if "app" not in scope:  # not behind Starlette: guard everything
        return True
    router = scope["app"].router
    patterns = getattr(router, "_guard_patterns", None)
    if patterns is None:  # built once per app: per request a regex or two, not a full
        patterns = {}  # match of every route (which the router then does again)
        for route in router.routes:
            for method in getattr(route, "methods", None) or ():
                patterns.setdefault(method, []).append(route.path_regex)
        router._guard_patterns = patterns
    return any(p.match(scope["path"]) for p in patterns.get(scope["method"], ()))


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it costs ~1 ms a request): checks JSON
    content type, body size and UTF-8 before routing, and writes one access log line per
    request, with what the route put in ``request.state.log`` (never comment text)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT", "PATCH") and _routed(scope):
                await self._guarded(scope, receive, send_and_watch)
            else:
                await self.app(scope, receive, send_and_watch)
        finally:
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    **scope.setdefault("state", {}).get("log", {}),
                },
            )

    async def _guarded(self, scope: dict, receive: Any, send: Any) -> None:
        limit = get_settings().max_body_bytes
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        problem = None
        if not content_type.startswith("application/json"):
            problem = (415, "unsupported_media_type", "Content-Type must be application/json")
        elif int(headers.get(b"content-length", b"0") or 0) > limit:
            problem = (413, "body_too_large", f"request body over {limit} bytes")
        body = b""
        if problem is None:
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    problem = (413, "body_too_large", f"request body over {limit} bytes")
                    break
        if problem is None:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                problem = (400, "invalid_utf8", "request body is not valid UTF-8")
        if problem is not None:
            response = errors.error_response(*problem)
            return await response(scope, receive, send)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 404, 409, 413, 415, 422, 503)
}


def create_app() -> FastAPI:
    app = FastAPI(
        title="Toxic-comment moderation API",
        version="1.0.0",
        description="Scores comments for the six Jigsaw toxicity labels and decides "
        "allow / review / block. Every prediction and piece of feedback is logged.",
        responses=ERRORS,
    )
    errors.install(app)
    app.add_middleware(RequestGuard)

    register_routes(app)
    return app


def _too_long(field: str, limit: int, unit: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", field), "msg": f"must be at most {limit} {unit}", "type": "too_long"}]
    )


def _public(prediction: Prediction) -> PredictionPublic:
    return PredictionPublic.model_validate(prediction, from_attributes=True)


def register_routes(app: FastAPI) -> None:
    @app.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
    async def health(service: ServiceDep) -> Any:
        """Model and store status; 503 with the reason when either is unavailable."""
        scorer, reason = await run_in_threadpool(service.model.status)
        reachable = await run_in_threadpool(service.store.ping)
        body = HealthPublic(
            status="ok" if scorer and reachable else "unavailable",
            model=ModelInfo(name=scorer.model_name, version=scorer.version or "unregistered")
            if scorer
            else None,
            reason=reason or (None if reachable else "prediction store unreachable"),
            store="reachable" if reachable else "unreachable",
        )
        status = 200 if body.status == "ok" else 503
        headers = None if status == 200 else {"Retry-After": errors.RETRY_AFTER_SECONDS}
        return JSONResponse(body.model_dump(), status_code=status, headers=headers)

    @app.get("/model", response_model=ModelCard, dependencies=[Depends(caller_id)])
    async def model(service: ServiceDep) -> ModelCard:
        """The served model: version, thresholds, the decision rule and its held-out metrics."""
        return ModelCard.model_validate(service.model_card())

    @app.post("/predict", response_model=PredictionPublic)
    async def predict(
        request: Request,
        payload: PredictCreate,
        service: ServiceDep,
        caller: CallerDep,
        settings: SettingsDep,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> PredictionPublic:
        """Score one comment, log it, and return scores, labels and the decision."""
        if len(payload.comment_text) > settings.max_comment_chars:
            raise _too_long("comment_text", settings.max_comment_chars, "characters")
        options = PredictOptions(payload.thresholds, payload.explain, payload.store_text)
        (prediction,) = await blocking(
            request, service.predict, [payload.comment_text], options, caller, idempotency_key
        )
        request.state.log = {
            "request_id": prediction.request_id,
            "decision": prediction.decision,
            "cached": prediction.cached,
            "model_version": prediction.model_version,
        }
        return _public(prediction)

    @app.post("/predict/batch", response_model=BatchPublic)
    async def predict_batch(
        request: Request,
        payload: BatchCreate,
        service: ServiceDep,
        caller: CallerDep,
        settings: SettingsDep,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> BatchPublic:
        """Score up to MAX_BATCH comments; one result per input, in input order, each logged."""
        if not payload.comments:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "comments"),
                        "msg": "must hold at least 1 comment",
                        "type": "too_short",
                    }
                ]
            )
        if len(payload.comments) > settings.max_batch:
            raise _too_long("comments", settings.max_batch, "comments")
        for index, text in enumerate(payload.comments):
            if len(text) > settings.max_comment_chars:
                raise _too_long(f"comments[{index}]", settings.max_comment_chars, "characters")
        options = PredictOptions(payload.thresholds, payload.explain, payload.store_text)
        results = await blocking(
            request, service.predict, payload.comments, options, caller, idempotency_key
        )
        request.state.log = {"batch_size": len(results), "model_version": results[0].model_version}
        return BatchPublic(
            results=[_public(p) for p in results], model_version=results[0].model_version
        )

    @app.post("/feedback", status_code=201, response_model=FeedbackPublic)
    async def feedback(
        payload: FeedbackCreate, service: ServiceDep, caller: CallerDep
    ) -> FeedbackPublic:
        """Record whether a prediction was right; the same feedback twice counts once."""
        created = await run_in_threadpool(
            service.feedback,
            payload.request_id,
            payload.correct,
            payload.true_labels,
            payload.notes,
            source="api",
            extra={"caller_id": caller},
        )
        return FeedbackPublic(request_id=payload.request_id, duplicate=not created)

    @app.get("/reviews", response_model=ReviewPage, dependencies=[Depends(caller_id)])
    async def reviews(
        service: ServiceDep,
        status: Annotated[str, Query(pattern="^(pending|decided)$")] = "pending",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        explain: bool = False,
    ) -> ReviewPage:
        """The human-review queue, oldest first, paginated with ``cursor``."""
        try:
            items, next_cursor = await run_in_threadpool(
                service.store.pending_reviews, limit, cursor, status
            )
        except (ValueError, KeyError):
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "cursor"),
                        "msg": "is not a cursor this API issued",
                        "type": "value_error",
                    }
                ]
            ) from None
        if explain:
            items = await run_in_threadpool(service.explain_reviews, items)
        return ReviewPage(
            items=[ReviewItem.model_validate(item) for item in items],
            next_cursor=next_cursor,
            count=await run_in_threadpool(service.store.count_reviews, status),
        )

    @app.post(
        "/reviews/{request_id}",
        response_model=ReviewDecisionPublic,
        dependencies=[Depends(caller_id)],
    )
    async def decide_review(
        request_id: str, payload: ReviewDecisionCreate, service: ServiceDep
    ) -> ReviewDecisionPublic:
        """A moderator's decision: recorded as feedback, and the item leaves the queue."""
        if payload.action == "relabel" and payload.true_labels is None:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "true_labels"),
                        "msg": "is required for relabel",
                        "type": "missing",
                    }
                ]
            )
        decision = await run_in_threadpool(
            service.decide_review,
            request_id,
            payload.action,
            payload.true_labels,
            payload.moderator,
            payload.notes,
        )
        return ReviewDecisionPublic.model_validate(decision)


app = create_app()
