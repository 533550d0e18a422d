"""Lambda SnapStart: the hooks the handler module registers with Lambda's
``snapshot_restore_py``, run here as Lambda runs them (the before-snapshot hooks in reverse
order of registration, the after-restore hooks in order; the library keeps them in two
module lists, read below). moto stands in for S3 and DynamoDB."""

import json

import pytest
import snapshot_restore_py

from local.lambda_context import LambdaContext
from moderation.stores.registry import ModelRegistry
from tests.paths import load_event


@pytest.fixture
def handler(stack):
    from api import snapstart
    from api.handler import handler

    hooks = [f for f, _, _ in snapshot_restore_py._before_snapshot_registry]
    assert snapstart.load_model_into_snapshot in hooks
    return handler


def take_snapshot() -> None:
    for func, args, kwargs in reversed(snapshot_restore_py._before_snapshot_registry):
        func(*args, **kwargs)


def restore() -> None:
    for func, args, kwargs in snapshot_restore_py._after_restore_registry:
        func(*args, **kwargs)


def predict(handler) -> dict:
    response = handler(load_event("api_predict.json"), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def test_a_restored_environment_answers_with_the_model_loaded_before_the_snapshot(handler, stack):
    # GIVEN a snapshot taken after init (the model loaded into it)
    take_snapshot()
    # AND the bundles gone from the bucket: an environment that fetched them would fail
    bucket = stack.settings.model_bucket
    for item in stack.s3.list_objects_v2(Bucket=bucket, Prefix="bundles/")["Contents"]:
        stack.s3.delete_object(Bucket=bucket, Key=item["Key"])
    # WHEN an environment is restored from it  THEN its first request is answered by v1
    restore()
    assert predict(handler)["model_version"] == "v1"


def test_after_a_restore_the_model_promoted_since_the_snapshot_is_served(handler, stack, trained):
    # GIVEN a snapshot holding v1 (a warm container re-reads the alias every 300 s)
    take_snapshot()
    assert predict(handler)["model_version"] == "v1"
    # WHEN v2 is promoted while the snapshot waits, and an environment is restored
    registry = ModelRegistry(stack.settings.model_bucket, stack.s3)
    registry.promote(registry.register(trained.bundle_dir).version, "production", force=True)
    restore()
    # THEN its first request reads the alias and is answered by v2, not the snapshot's v1
    assert predict(handler)["model_version"] == "v2"
