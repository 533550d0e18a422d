"""Feedback from callers on a logged prediction."""

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, ServiceDep
from api.schemas import FeedbackCreate, FeedbackPublic

router = APIRouter()


@router.post("/feedback", status_code=201, response_model=FeedbackPublic)
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
        caller_id=caller,
    )
    return FeedbackPublic(request_id=payload.request_id, duplicate=not created)
