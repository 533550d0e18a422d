"""The human-review queue: list it, decide an item."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep, caller_id
from api.errors import invalid_field
from api.schemas import ReviewDecisionCreate, ReviewDecisionPublic, ReviewItem, ReviewPage
from moderation.records import ReviewStatus

router = APIRouter(dependencies=[Depends(caller_id)])


@router.get("/reviews", response_model=ReviewPage)
async def reviews(
    service: ServiceDep,
    status: Annotated[ReviewStatus, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    explain: bool = False,
) -> ReviewPage:
    """The human-review queue, oldest first, paginated with ``cursor``."""
    page = await run_in_threadpool(service.reviews, status, limit, cursor, explain)
    return ReviewPage(
        items=[
            ReviewItem.model_validate(
                {**item.model_dump(), "explanations": page.explanations.get(item.request_id)}
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
        count=page.count,
    )


@router.post("/reviews/{request_id}", response_model=ReviewDecisionPublic)
async def decide_review(
    request_id: str, payload: ReviewDecisionCreate, service: ServiceDep
) -> ReviewDecisionPublic:
    """A moderator's decision: recorded as feedback, and the item leaves the queue."""
    if payload.action == "relabel" and payload.true_labels is None:
        raise invalid_field(("body", "true_labels"), "is required for relabel", "missing")
    review, correct = await run_in_threadpool(
        service.decide_review,
        request_id,
        payload.action,
        payload.true_labels,
        payload.moderator,
        payload.notes,
    )
    return ReviewDecisionPublic(request_id=request_id, correct=correct, **review.model_dump())
