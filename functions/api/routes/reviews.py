"""The human-review queue: list it, claim an item, decide it (one or many), undo, audit."""

import csv
import io
import re
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep, SettingsDep, caller_id
from api.errors import invalid_field
from api.schemas import (
    BulkDecisionCreate,
    BulkDecisionPublic,
    BulkItemPublic,
    ClaimPublic,
    ModeratorCreate,
    ReviewDecisionCreate,
    ReviewDecisionPublic,
    ReviewItem,
    ReviewPage,
    UndoPublic,
)
from moderation.labels import Label
from moderation.records import ReviewStatus
from moderation.settings import Settings
from moderation.stores.audit import AUDIT_COLUMNS, csv_cell
from moderation.stores.prediction_log import QueueView

router = APIRouter(dependencies=[Depends(caller_id)])

#: the most days one audit export covers
MAX_AUDIT_DAYS = 92


def _check_decision(payload: ReviewDecisionCreate, settings: Settings) -> None:
    """What the schema cannot say: relabel needs labels; a reason must be a configured code."""
    if payload.action == "relabel" and payload.true_labels is None:
        raise invalid_field(("body", "true_labels"), "is required for relabel", "missing")
    if payload.reason is not None and payload.reason not in settings.reason_codes:
        codes = ", ".join(settings.reason_codes)
        raise invalid_field(("body", "reason"), f"must be one of: {codes}", "enum")


@router.get("/reviews", response_model=ReviewPage)
async def reviews(
    service: ServiceDep,
    settings: SettingsDep,
    status: Annotated[ReviewStatus, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    explain: bool = False,
    order: Annotated[Literal["priority", "oldest"], Query()] = "priority",
    label: Annotated[Label | Literal["none"] | None, Query()] = None,
    policy: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    moderator: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> ReviewPage:
    """The human-review queue, by priority (or oldest first), paginated with ``cursor``."""
    if (label or policy) and (status != "pending" or order != "priority"):
        problem = "filters by label or policy list pending items in priority order"
        raise invalid_field(("query", "label" if label else "policy"), problem, "value_error")
    view = QueueView(order, label, policy, moderator)
    page = await run_in_threadpool(service.reviews, status, limit, cursor, explain, view)
    return ReviewPage(
        items=[
            ReviewItem.model_validate(
                {
                    **item.model_dump(),
                    "lead_label": item.lead_label,
                    "explanations": page.explanations.get(item.request_id),
                }
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
        count=page.count,
        oldest_created_at=page.oldest_created_at,
        reasons=list(settings.reason_codes),
    )


def _iso_day(value: object) -> object:
    """Only a YYYY-MM-DD day: pydantic would otherwise read "0" as a Unix time."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("must be a day as YYYY-MM-DD")
    return value


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
UtcDay = Annotated[date, BeforeValidator(_iso_day)]


@router.get("/reviews/audit.csv", response_class=Response)
async def audit_export(
    service: ServiceDep,
    since: Annotated[UtcDay, Query(alias="from", description="first UTC day (YYYY-MM-DD)")],
    until: Annotated[
        UtcDay | None, Query(alias="to", description="last UTC day; default: from")
    ] = None,
) -> Response:
    """Every claim, decision and undo of a range of days, as CSV (who, what, when, why)."""
    last = until or since
    if last < since or last - since > timedelta(days=MAX_AUDIT_DAYS - 1):
        problem = f"must be on or after from, and at most {MAX_AUDIT_DAYS} days after it"
        raise invalid_field(("query", "to"), problem, "value_error")

    def render() -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(AUDIT_COLUMNS)
        for line in service.audit_lines(since, last):
            row = line.model_dump()
            writer.writerow([csv_cell(row[column]) for column in AUDIT_COLUMNS])
        return out.getvalue()

    body = await run_in_threadpool(render)
    name = f"review-audit-{since.isoformat()}-{last.isoformat()}.csv"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/reviews/bulk", response_model=BulkDecisionPublic)
async def decide_many(
    payload: BulkDecisionCreate, service: ServiceDep, settings: SettingsDep
) -> BulkDecisionPublic:
    """One decision on many items; each is decided on its own, and each outcome reported."""
    _check_decision(payload, settings)
    results = await run_in_threadpool(
        service.decide_many,
        payload.request_ids,
        payload.action,
        payload.true_labels,
        payload.moderator,
        payload.notes,
        payload.reason,
    )
    items = [
        BulkItemPublic(
            request_id=r.request_id,
            status=r.status,
            message=r.message,
            decided_at=r.review.decided_at if r.review else None,
        )
        for r in results
    ]
    return BulkDecisionPublic(decided=sum(r.status == "decided" for r in results), results=items)


@router.post("/reviews/{request_id}/claim", response_model=ClaimPublic)
async def claim(request_id: str, payload: ModeratorCreate, service: ServiceDep) -> ClaimPublic:
    """Hold a pending item for one moderator for a few minutes; 409 while another holds it."""
    audit = await run_in_threadpool(service.claim, request_id, payload.moderator)
    return ClaimPublic(
        request_id=request_id,
        moderator=audit.moderator,
        lease_expires_at=audit.lease_expires_at or 0,
    )


@router.post("/reviews/{request_id}/undo", response_model=UndoPublic)
async def undo(request_id: str, payload: ModeratorCreate, service: ServiceDep) -> UndoPublic:
    """Reopen your own decision within the undo window; the item comes back to you."""
    audit = await run_in_threadpool(service.undo_review, request_id, payload.moderator)
    return UndoPublic(
        request_id=request_id,
        moderator=audit.moderator,
        undone_at=audit.at,
        lease_expires_at=audit.lease_expires_at or 0,
    )


@router.post("/reviews/{request_id}", response_model=ReviewDecisionPublic)
async def decide_review(
    request_id: str, payload: ReviewDecisionCreate, service: ServiceDep, settings: SettingsDep
) -> ReviewDecisionPublic:
    """A moderator's decision: recorded as feedback and in the audit log; the item leaves
    the queue. 409 when it is not pending or another moderator holds it."""
    _check_decision(payload, settings)
    review, correct = await run_in_threadpool(
        service.decide_review,
        request_id,
        payload.action,
        payload.true_labels,
        payload.moderator,
        payload.notes,
        payload.reason,
    )
    return ReviewDecisionPublic(
        request_id=request_id,
        correct=correct,
        **review.model_dump(exclude={"notes"}),
    )
