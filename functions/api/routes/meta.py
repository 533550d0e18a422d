"""What is being served: health (no key needed) and the model card."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import errors
from api.deps import ServiceDep, caller_id
from api.schemas import HealthPublic, ModelCard

router = APIRouter()


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health(service: ServiceDep) -> Any:
    """Model and store status; 503 with the reason when either is unavailable."""
    state = await run_in_threadpool(service.health)
    body = HealthPublic(
        status="ok" if state.ok else "unavailable",
        model=state.model_name,
        model_version=state.model_version,
        reason=state.model_problem
        or (None if state.store_reachable else "prediction store unreachable"),
        store="reachable" if state.store_reachable else "unreachable",
    )
    status = 200 if state.ok else 503
    headers = None if state.ok else {"Retry-After": errors.RETRY_AFTER_SECONDS}
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@router.get("/model", response_model=ModelCard, dependencies=[Depends(caller_id)])
async def model(service: ServiceDep) -> ModelCard:
    """The served model: version, thresholds, the decision rule and its held-out metrics."""
    return ModelCard.model_validate(service.model_card())
