"""The request guard: JSON content type, body size and UTF-8 checked before routing, and one
access log line per request (never comment text)."""

import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute

from api import errors
from moderation.log import logger
from moderation.settings import get_settings


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it costs ~1 ms a request): checks JSON
    content type, body size and UTF-8 before routing, and writes one access log line per
    request, with what the route put in ``request.state.log`` (never comment text)."""

    def __init__(self, app: Any, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        # Only what a route takes is guarded: the router answers the rest (404, 405),
        # rather than a 415 that would tell a ``PUT /health`` caller to change its body.
        # Per request, a regex or two (built once here), not a full match of every route.
        self.patterns: dict[str, list[re.Pattern[str]]] = {}
        for route in routes:
            for method in getattr(route, "methods", None) or ():
                self.patterns.setdefault(method, []).append(route.path_regex)

    def _routed(self, scope: dict) -> bool:
        return any(p.match(scope["path"]) for p in self.patterns.get(scope["method"], ()))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT", "PATCH") and self._routed(scope):
                await self._guarded(scope, receive, send_and_watch)
            else:
                await self.app(scope, receive, send_and_watch)
        finally:
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    **scope.setdefault("state", {}).get("log", {}),
                },
            )

    async def _guarded(self, scope: dict, receive: Any, send: Any) -> None:
        limit = get_settings().max_body_bytes
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        problem = None
        if not content_type.startswith("application/json"):
            problem = (415, "unsupported_media_type", "Content-Type must be application/json")
        elif int(headers.get(b"content-length", b"0") or 0) > limit:
            problem = (413, "body_too_large", f"request body over {limit} bytes")
        body = b""
        if problem is None:
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    problem = (413, "body_too_large", f"request body over {limit} bytes")
                    break
        if problem is None:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                problem = (400, "invalid_utf8", "request body is not valid UTF-8")
        if problem is not None:
            response = errors.error_response(*problem, path=scope["path"])
            return await response(scope, receive, send)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
