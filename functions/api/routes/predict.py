"""Scoring: one comment, or a batch answered in input order."""

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import CallerDep, ServiceDep, SettingsDep, blocking
from api.errors import invalid_field
from api.schemas import BatchCreate, BatchPublic, PredictCreate, PredictionPublic
from moderation.service import Prediction, PredictOptions

router = APIRouter()
IdempotencyKey = Annotated[str | None, Header(max_length=128)]


def _public(prediction: Prediction) -> PredictionPublic:
    return PredictionPublic.model_validate(prediction, from_attributes=True)


def _too_long(field: str, limit: int, unit: str) -> Exception:
    return invalid_field(("body", field), f"must be at most {limit} {unit}", "too_long")


@router.post("/predict", response_model=PredictionPublic)
async def predict(
    request: Request,
    payload: PredictCreate,
    service: ServiceDep,
    caller: CallerDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
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


@router.post("/predict/batch", response_model=BatchPublic)
async def predict_batch(
    request: Request,
    payload: BatchCreate,
    service: ServiceDep,
    caller: CallerDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> BatchPublic:
    """Score up to MAX_BATCH comments; one result per input, in input order, each logged."""
    if not payload.comments:
        raise invalid_field(("body", "comments"), "must hold at least 1 comment", "too_short")
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
