"""Checks several test modules make on what the API answers."""


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    """The API's one error shape, with ``status`` (and ``code``, when given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body
