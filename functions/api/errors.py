"""Every error leaves the API in one JSON shape: ``{"error": {code, message, details}, ...}``,
and on the Perspective-compatible paths in Google's: ``{"error": {code (the HTTP status),
message, status (e.g. INVALID_ARGUMENT), details}}``, which Perspective's clients parse.

Domain errors map to HTTP here, in one place; no stack trace ever reaches a caller."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moderation.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    InvalidCursor,
    ModelUnavailable,
    ModerationError,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)
from moderation.log import logger

RETRY_AFTER_SECONDS = "2"
_DOMAIN_STATUS: dict[type[ModerationError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    Forbidden: (403, "forbidden"),
    PreconditionFailed: (412, "precondition_failed"),
    IdempotencyMismatch: (422, "idempotency_key_reused"),
    InvalidCursor: (422, "invalid_request"),
    ModelUnavailable: (503, "model_unavailable"),
    StoreUnavailable: (503, "store_unavailable"),
}


#: Paths answered in Perspective's shapes (its analyze/suggestscore and discovery document).
PERSPECTIVE_PATH_PREFIXES = ("/v1alpha1/", "/$discovery/")
#: HTTP status -> google.rpc.Code name, as Google's APIs pair them
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
#: Google answers every malformed or oversized request 400 INVALID_ARGUMENT
_GOOGLE_BAD_REQUEST = (413, 415, 422)


class PerspectiveError(Exception):
    """A request Perspective itself would refuse, with its status and words."""

    def __init__(
        self, message: str, status: int = 400, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.details = message, status, details or []


def is_perspective_path(path: str) -> bool:
    return path.startswith(PERSPECTIVE_PATH_PREFIXES)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    path: str = "",
) -> JSONResponse:
    """The error in the shape ``path``'s callers read: ours, or Google's on Perspective's."""
    if is_perspective_path(path):
        return google_error_response(status, message, _field_violations(details), headers)
    body = {"error": {"code": code, "message": message, "details": details or []}}
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


def google_error_response(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status = 400 if status in _GOOGLE_BAD_REQUEST else status
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
            "details": details or [],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _field_violations(details: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Our ``{field, problem}`` details as google.rpc.BadRequest field violations."""
    if not details:
        return []
    violations = [{"field": d.get("field") or "", "description": d["problem"]} for d in details]
    return [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}]


def invalid_field(loc: tuple[str, ...], problem: str, kind: str) -> RequestValidationError:
    """A check a route makes beyond its schema, answered like the schema's own (422)."""
    return RequestValidationError([{"loc": loc, "msg": problem, "type": kind}])


def _field(loc: tuple[Any, ...]) -> str | None:
    # "[key]" is where pydantic reports a bad dict key: the key itself names the field
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "[key]")]
    return ".".join(parts) or None


def _problem(error: dict[str, Any]) -> str:
    message = error.get("msg", "invalid")
    return message.removeprefix("Value error, ")


async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    path = request.url.path
    if any(e.get("type") == "json_invalid" for e in errors):
        message = "request body is not valid JSON (UTF-8)"
        return error_response(400, "malformed_json", message, path=path)
    details = [{"field": _field(tuple(e.get("loc", ()))), "problem": _problem(e)} for e in errors]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:3])
    return error_response(422, "invalid_request", summary, details, path=path)


async def http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
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
        path=request.url.path,
    )


async def domain_handler(request: Request, exc: ModerationError) -> JSONResponse:
    status, code = _DOMAIN_STATUS.get(type(exc), (400, "bad_request"))
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    path = request.url.path
    if status >= 500:
        logger.warning("answering %s: %s", status, code)
    if isinstance(exc, InvalidCursor):  # a query parameter's problem, shaped as one
        detail = {"field": "cursor", "problem": str(exc)}
        return error_response(status, code, f"cursor: {exc}", [detail], path=path)
    return error_response(status, code, str(exc), headers=headers, path=path)


async def perspective_handler(_request: Request, exc: PerspectiveError) -> JSONResponse:
    return google_error_response(exc.status, exc.message, exc.details)


async def unexpected_handler(request: Request, _exc: Exception) -> JSONResponse:
    logger.exception("unexpected error")
    message = "unexpected error; it has been logged"
    return error_response(500, "internal_error", message, path=request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(ModerationError, domain_handler)
    app.add_exception_handler(PerspectiveError, perspective_handler)
    app.add_exception_handler(Exception, unexpected_handler)
