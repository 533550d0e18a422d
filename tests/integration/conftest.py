"""AWS is moto in-process (``mock_aws``): the template's tables and bucket, a promoted model,
and the API in FastAPI's test client over a service built for each test."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from aggregator.handler import handler
from api.deps import get_service, service_dependency, settings_dependency
from api.main import create_app
from local.lambda_context import LambdaContext
from local.resources import create_resources
from local.streams import Checkpoints, StreamReader
from moderation.model_holder import ModelHolder
from moderation.policy_catalog import PolicyCatalog
from moderation.service import ModerationService
from moderation.settings import Settings, get_settings
from moderation.stores.aggregates import AggregateStore
from moderation.stores.audit import AuditLog
from moderation.stores.dynamo import deserialize
from moderation.stores.policies import PolicyStore
from moderation.stores.prediction_log import PredictionLog
from moderation.stores.registry import ModelRegistry
from tests.fakes import forget_container_state


class Stack:
    """moto DynamoDB + S3 with the template's tables (and, for ``stack``, a promoted model)."""

    def __init__(self, dynamodb, s3, settings: Settings) -> None:
        self.dynamodb, self.s3, self.settings = dynamodb, s3, settings

    def items(self, kind: str | None = None) -> list[dict]:
        raw = self.dynamodb.scan(TableName=self.settings.predictions_table)["Items"]
        items = [deserialize(i) for i in raw]
        return [i for i in items if kind is None or i.get("type") == kind]

    def cache_items(self) -> list[dict]:
        raw = self.dynamodb.scan(TableName=self.settings.cache_table)["Items"]
        return [deserialize(i) for i in raw]

    def service(self, dynamodb_client=None, settings: Settings | None = None) -> ModerationService:
        """A service over these tables (through ``dynamodb_client`` when given: a fault
        injector wrapping the real client, say), under ``settings`` or the stack's."""
        settings = settings or self.settings
        store = PredictionLog(settings.predictions_table, settings.cache_table, dynamodb_client)
        counts = AggregateStore(settings.aggregates_table, dynamodb_client or self.dynamodb)
        audit = AuditLog(settings.audit_table, dynamodb_client or self.dynamodb)
        policies = PolicyCatalog(
            PolicyStore(settings.policies_table, dynamodb_client or self.dynamodb),
            settings.policy_cache_seconds,
            settings.unsupported_language_decision,
        )
        return ModerationService(ModelHolder(settings), store, settings, counts, policies, audit)


@contextmanager
def moto_stack() -> Iterator[Stack]:
    """Tables and bucket from template.yaml in moto. The Lambda handler's cached service is
    dropped on both sides, so none outlives its moto."""
    with mock_aws():
        settings = get_settings()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        create_resources(settings, dynamodb, s3)
        get_service.cache_clear()
        yield Stack(dynamodb, s3, settings)
        get_service.cache_clear()


def promote(stack: Stack, bundle_dir: Path) -> Stack:
    registry = ModelRegistry(stack.settings.model_bucket, stack.s3)
    registry.promote(registry.register(bundle_dir).version, "production")
    return stack


@pytest.fixture
def empty_stack(session_env) -> Iterator[Stack]:
    """The template's resources, no model registered."""
    with moto_stack() as stack:
        yield stack


@pytest.fixture
def stack(empty_stack: Stack, trained) -> Stack:
    """The template's resources and the small trained model promoted to production (v1)."""
    return promote(empty_stack, trained.bundle_dir)


@pytest.fixture(scope="module")
def module_stack(session_env, trained) -> Iterator[Stack]:
    """``stack``, held for a whole module: for large corpora and generated cases, where
    each case checks its own delta."""
    with moto_stack() as stack:
        yield promote(stack, trained.bundle_dir)


def api_client(service: ModerationService, settings: Settings | None = None) -> TestClient:
    """The API app answering through ``service`` (and ``settings``, when given)."""
    app = create_app()
    app.dependency_overrides[service_dependency] = lambda: service
    if settings is not None:
        app.dependency_overrides[settings_dependency] = lambda: settings
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="session")
def make_client() -> Callable[..., TestClient]:
    """``make_client(service, settings=None)``: a test client over that service."""
    return api_client


@pytest.fixture
def service(stack: Stack) -> ModerationService:
    return stack.service()


@pytest.fixture
def client(service: ModerationService) -> Iterator[TestClient]:
    with api_client(service) as test_client:
        yield test_client


@pytest.fixture
def aggregator(stack: Stack) -> Iterator[Callable[[dict], dict]]:
    """The aggregator Lambda handler, invoked as Lambda would with a stream event."""
    forget_container_state()
    yield lambda event: handler(event, LambdaContext())
    forget_container_state()


@pytest.fixture
def drain_stream(stack: Stack, tmp_path: Path) -> Callable[[], int]:
    """``drain_stream()``: every record of the predictions table's stream not yet read fed to
    the aggregator handler, as Lambda's event source mapping (and ``make run``'s stream
    runner) does; returns how many were handled."""
    reader = StreamReader(
        stack.settings.predictions_table,
        handler,
        Checkpoints(tmp_path / "stream-checkpoints.json"),
        stack.dynamodb,
        boto3.client("dynamodbstreams", region_name="us-east-1"),
        context=LambdaContext(),
    )

    def drain() -> int:
        forget_container_state()
        handled = 0
        while batch := reader.poll():
            handled += batch
        return handled

    return drain
