"""The moderation API over HTTP: one method per endpoint, one error type for the pages.

Every failure (unreachable API, timeout, 4xx, 503) becomes an ``ApiError`` whose message is
fit to show a moderator; the pages never see a stack trace."""

from typing import Any

import httpx

from web.settings import WebSettings


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class ApiClient:
    def __init__(
        self,
        settings: WebSettings,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
    ):
        """A client sending ``api_key`` (an admin's, for the Policies page), else the
        settings' key."""
        headers = {"user-agent": "toxic-moderation-web"}
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        if key:
            headers["x-api-key"] = key
        self.base_url = str(settings.api_url).rstrip("/")
        self.timeout = settings.api_timeout_s
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=self.timeout, transport=transport
        )

    # endpoints
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", accept=(200, 503))

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/model")

    def predict(self, text: str, explain: bool = True) -> dict[str, Any]:
        return self._call("POST", "/predict", json={"comment_text": text, "explain": explain})

    def predict_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        return self._call("POST", "/predict/batch", json={"comments": texts})["results"]

    def feedback(
        self, request_id: str, correct: bool, true_labels: list[str] | None, notes: str | None
    ) -> dict[str, Any]:
        body = {"request_id": request_id, "correct": correct, "true_labels": true_labels}
        if notes:
            body["notes"] = notes
        return self._call("POST", "/feedback", json=body)

    def reviews(
        self,
        limit: int = 10,
        cursor: str | None = None,
        order: str = "priority",
        label: str | None = None,
        policy: str | None = None,
        moderator: str | None = None,
    ) -> dict[str, Any]:
        """A page of pending items; with ``moderator``, those others hold are left out."""
        params: dict[str, Any] = {"status": "pending", "limit": limit, "explain": "true"}
        optional = {"cursor": cursor, "label": label, "policy": policy, "moderator": moderator}
        params.update({name: value for name, value in optional.items() if value})
        if order != "priority":
            params["order"] = order
        return self._call("GET", "/reviews", params=params)

    def queue_count(self) -> int:
        return int(self._call("GET", "/reviews", params={"limit": 1})["count"])

    def claim_review(self, request_id: str, moderator: str) -> dict[str, Any]:
        """Hold an item for ``moderator`` (a lease); a 409 names who holds it instead."""
        return self._call("POST", f"/reviews/{request_id}/claim", json={"moderator": moderator})

    def decide_review(
        self,
        request_id: str,
        action: str,
        moderator: str,
        true_labels: list[str] | None = None,
        notes: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        body = _decision(action, moderator, true_labels, notes, reason)
        return self._call("POST", f"/reviews/{request_id}", json=body)

    def decide_reviews(
        self,
        request_ids: list[str],
        action: str,
        moderator: str,
        true_labels: list[str] | None = None,
        notes: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """One decision on many items; the answer reports each item's outcome."""
        body = _decision(action, moderator, true_labels, notes, reason)
        return self._call("POST", "/reviews/bulk", json={**body, "request_ids": request_ids})

    def undo_review(self, request_id: str, moderator: str) -> dict[str, Any]:
        """Reopen one's own decision within the undo window; the item is held for them."""
        return self._call("POST", f"/reviews/{request_id}/undo", json={"moderator": moderator})

    def policies(self) -> list[dict[str, Any]]:
        return self._call("GET", "/policies")["items"]

    def put_policy(self, policy_id: str, body: dict[str, Any], version: int | None) -> dict:
        """Save a policy; ``version`` (the one edited) guards against overwriting a newer one."""
        headers = {"If-Match": f'"{version}"'} if version is not None else {}
        return self._call("PUT", f"/policies/{policy_id}", json=body, headers=headers)

    def preview_policy(self, policy_id: str, body: dict[str, Any], days: int) -> dict[str, Any]:
        return self._call(
            "POST", f"/policies/{policy_id}:preview", json=body, params={"days": days}
        )

    # the one place HTTP failures become messages
    def _call(self, method: str, path: str, accept: tuple[int, ...] = (), **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"The moderation API at {self.base_url} did not answer within "
                f"{self.timeout:g} s. Try again in a moment."
            ) from None
        except httpx.HTTPError:
            raise ApiError(
                f"The moderation API at {self.base_url} is unreachable. Check that it is "
                "running and that API_URL points at it."
            ) from None
        if response.is_success or response.status_code in accept:
            return _json(response)
        raise _error(response)


def _decision(
    action: str,
    moderator: str,
    true_labels: list[str] | None,
    notes: str | None,
    reason: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "moderator": moderator}
    if true_labels is not None:
        body["true_labels"] = true_labels
    if reason:
        body["reason"] = reason
    if notes:
        body["notes"] = notes
    return body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"The API answered {response.status_code} with a body that is not JSON.",
            response.status_code,
        ) from None


def _error(response: httpx.Response) -> ApiError:
    status = response.status_code
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error.get("code"))
        details = "; ".join(
            f"{d['field']}: {d['problem']}" if d.get("field") else str(d["problem"])
            for d in error.get("details") or []
        )
    except (ValueError, KeyError, TypeError):
        message, code, details = response.reason_phrase or "error", None, ""
    if status in (401, 403):
        text = f"The API refused the request ({status}): check API_KEY. {message}"
    elif status == 503:
        retry = response.headers.get("retry-after")
        wait = f" Try again in {retry} s." if retry else " Try again shortly."
        text = f"The moderation service is temporarily unavailable: {message}.{wait}"
    elif status == 429:
        text = "Too many requests for this API key; wait a moment and try again."
    else:
        text = f"The API refused the request ({status}): {message}"
    if details:
        text += f" ({details})"
    return ApiError(text, status, code)
