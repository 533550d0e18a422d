"""Schemathesis against the API's own OpenAPI schema, in process (ASGI), backed by moto
tables from template.yaml and a promoted model: whatever the schema allows or forbids, the
API never answers 5xx and every answer matches what the schema promises."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.deps import service_dependency
from api.main import create_app

# positive_data_acceptance is left out on purpose: the schema cannot carry every rule the API
# enforces (MAX_COMMENT_CHARS and MAX_BATCH are settings, "not whitespace only" is a Python
# rule, and a review cursor is valid only if this API issued it), so schema-valid requests
# such as {"comment_text": ""} are rightly refused with a documented 422.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]


# Loading the schema only reads /openapi.json: no AWS call, no model (both are lazy).
APP = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
SEEN: dict[str, set[int]] = {}


@pytest.fixture(scope="module", autouse=True)
def aws_stack(module_stack) -> Iterator[None]:
    """The template's tables and a promoted model in moto, held for every generated case of
    the module (a generated case is not a test, so per-test fixtures would not reach it)."""
    service = module_stack.service()
    APP.dependency_overrides[service_dependency] = lambda: service
    yield
    APP.dependency_overrides.clear()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # the same cases every run: a failure reproduces, a pass stays one
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_honours_its_schema(case):
    # GIVEN any request the schema allows, or one it forbids (schemathesis' negative mode)
    # WHEN it is sent  THEN no 5xx, a documented status, and a body matching the schema
    response = case.call_and_validate(checks=CHECKS)
    SEEN.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)


def test_the_fuzzing_reached_the_model_and_the_validation():
    # THEN the run above was not vacuous: every operation was called, comments were scored
    # and logged (200), and malformed ones refused (422)
    documented = {op.ok().label for op in schema.get_all_operations()}
    assert documented <= set(SEEN), SEEN
    assert {200, 422} <= SEEN["POST /predict"] and {200, 422} <= SEEN["POST /predict/batch"]
