"""Scoring: one comment, or a batch answered in input order."""

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import ContextDep, blocking
from api.errors import invalid_field
from api.schemas import BatchCreate, BatchPublic, PolicyRef, PredictCreate, PredictionPublic
from moderation.service import Prediction, PredictOptions

router = APIRouter()
IdempotencyKey = Annotated[str | None, Header(max_length=128)]


def public_prediction(prediction: Prediction) -> PredictionPublic:
    policy = (
        PolicyRef(id=prediction.policy_id, version=prediction.policy_version)
        if prediction.policy_id is not None and prediction.policy_version is not None
        else None
    )
    return PredictionPublic.model_validate(
        {**vars(prediction), "policy": policy}, from_attributes=True
    )


def _too_long(field: str, limit: int, unit: str) -> Exception:
    return invalid_field(("body", field), f"must be at most {limit} {unit}", "too_long")


@router.post("/predict", response_model=PredictionPublic)
async def predict(
    request: Request,
    payload: PredictCreate,
    context: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> PredictionPublic:
    """Score one comment, log it, and return scores, labels and the decision."""
    service, settings, caller = context.service, context.settings, context.caller
    if len(payload.comment_text) > settings.max_comment_chars:
        raise _too_long("comment_text", settings.max_comment_chars, "characters")
    options = PredictOptions(
        payload.thresholds, payload.explain, payload.store_text, payload.policy_id
    )
    (prediction,) = await blocking(
        request,
        service.predict,
        [payload.comment_text],
        options,
        caller.id,
        idempotency_key,
        admin=caller.admin,
    )
    request.state.log = {
        "request_id": prediction.request_id,
        "decision": prediction.decision,
        "cached": prediction.cached,
        "model_version": prediction.model_version,
    }
    return public_prediction(prediction)


@router.post("/predict/batch", response_model=BatchPublic)
async def predict_batch(
    request: Request,
    payload: BatchCreate,
    context: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> BatchPublic:
    """Score up to MAX_BATCH comments; one result per input, in input order, each logged."""
    service, settings, caller = context.service, context.settings, context.caller
    if not payload.comments:
        raise invalid_field(("body", "comments"), "must hold at least 1 comment", "too_short")
    if len(payload.comments) > settings.max_batch:
        raise _too_long("comments", settings.max_batch, "comments")
    for index, text in enumerate(payload.comments):
        if len(text) > settings.max_comment_chars:
            raise _too_long(f"comments[{index}]", settings.max_comment_chars, "characters")
    options = PredictOptions(
        payload.thresholds, payload.explain, payload.store_text, payload.policy_id
    )
    results = await blocking(
        request,
        service.predict,
        payload.comments,
        options,
        caller.id,
        idempotency_key,
        admin=caller.admin,
    )
    request.state.log = {"batch_size": len(results), "model_version": results[0].model_version}
    return BatchPublic(
        results=[public_prediction(p) for p in results], model_version=results[0].model_version
    )
