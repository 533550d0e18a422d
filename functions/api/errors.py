"""Every error leaves the API in one JSON shape: ``{"error": {code, message, details}, ...}``.

Domain errors map to HTTP here, in one place; no stack trace ever reaches a caller."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moderation.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidCursor,
    ModelUnavailable,
    ModerationError,
    NotFound,
    StoreUnavailable,
)
from moderation.log import logger

RETRY_AFTER_SECONDS = "2"
_DOMAIN_STATUS: dict[type[ModerationError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    IdempotencyMismatch: (422, "idempotency_key_reused"),
    InvalidCursor: (422, "invalid_request"),
    ModelUnavailable: (503, "model_unavailable"),
    StoreUnavailable: (503, "store_unavailable"),
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


def invalid_field(loc: tuple[str, ...], problem: str, kind: str) -> RequestValidationError:
    """A check a route makes beyond its schema, answered like the schema's own (422)."""
    return RequestValidationError([{"loc": loc, "msg": problem, "type": kind}])


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or None


def _problem(error: dict[str, Any]) -> str:
    message = error.get("msg", "invalid")
    return message.removeprefix("Value error, ")


async def validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "request body is not valid JSON (UTF-8)")
    details = [{"field": _field(tuple(e.get("loc", ()))), "problem": _problem(e)} for e in errors]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:3])
    return error_response(422, "invalid_request", summary, details)


async def http_handler(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI raises 400 only when it cannot parse a body (e.g. JSON nested past Python's
    # recursion limit): the same problem, and code, as any malformed JSON.
    codes = {
        400: "malformed_json",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
    }
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=exc.headers,
    )


async def domain_handler(_request: Request, exc: ModerationError) -> JSONResponse:
    status, code = _DOMAIN_STATUS.get(type(exc), (400, "bad_request"))
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    if status >= 500:
        logger.warning("answering %s: %s", status, code)
    if isinstance(exc, InvalidCursor):  # a query parameter's problem, shaped as one
        detail = {"field": "cursor", "problem": str(exc)}
        return error_response(status, code, f"cursor: {exc}", [detail])
    return error_response(status, code, str(exc), headers=headers)


async def unexpected_handler(_request: Request, _exc: Exception) -> JSONResponse:
    logger.exception("unexpected error")
    return error_response(500, "internal_error", "unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(ModerationError, domain_handler)
    app.add_exception_handler(Exception, unexpected_handler)
