"""A logged prediction's status: what was decided, what finally happened, and why."""

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, ServiceDep
from api.schemas import PredictionStatusPublic

router = APIRouter()


@router.get("/predictions/{request_id}", response_model=PredictionStatusPublic)
async def prediction_status(
    request_id: str, service: ServiceDep, caller: CallerDep
) -> PredictionStatusPublic:
    """One of the caller's predictions as logged, its review and final outcome, its feedback."""
    status = await run_in_threadpool(service.prediction_status, request_id, caller)
    outcome = status.outcome
    return PredictionStatusPublic.model_validate(
        {
            **status.prediction.model_dump(),
            "outcome": outcome.__dict__ if outcome else None,
            "feedback": [f.model_dump() for f in status.feedback],
            "history": [line.model_dump() for line in status.history],
        }
    )
