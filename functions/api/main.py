"""The FastAPI application: the routers, the request guard and the error handlers."""

from typing import Any

from fastapi import APIRouter, FastAPI

from api import errors
from api.middleware import RequestGuard
from api.routes import feedback, meta, perspective, policies, predict, predictions, reviews
from api.schemas import ErrorPublic

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)
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
    routers = (
        predict.router,
        perspective.router,
        meta.router,
        predictions.router,
        feedback.router,
        reviews.router,
        policies.router,
    )
    # The modules' routes are included as one router, hot paths first: FastAPI matches each
    # included router through a layer of its own per request, and seven of them measured
    # 0.1-0.2 ms a request here (docs/performance.md). Each route already carries its
    # module router's responses and dependencies.
    api = APIRouter()
    for router in routers:
        api.routes.extend(router.routes)
    app.include_router(api)
    app.add_middleware(RequestGuard, routes=[r for router in routers for r in router.routes])
    return app


app = create_app()
