"""Shared fixtures. AWS is moto (in-process ``mock_aws``); W&B runs offline into a temp dir:
fakes only at the edge of a real thing."""

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from moderation.labels import LABELS
from moderation.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
DATA_DIR = Path(os.environ.get("DATA_DIR", REPO.parent / "shared" / "data" / "jigsaw")).resolve()

# Tests never talk to a real AWS account or W&B server.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    WANDB_MODE="offline",
    # botocore >= 1.40 sends DynamoDB Streams calls to account-based endpoints that moto does
    # not route yet; boto3's own switch brings back the regional endpoint.
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    WANDB_SILENT="true",
)
for name in ("WANDB_API_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def jigsaw_train() -> pd.DataFrame:
    frame = pd.read_csv(DATA_DIR / "train.csv.xz", dtype={"id": str})
    flags = pd.read_csv(DATA_DIR / "train_sample_flags.csv.xz", dtype={"id": str})
    return frame.merge(flags, on="id")


@pytest.fixture(scope="session")
def jigsaw_test() -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / "test_scored.csv.xz", dtype={"id": str})


@pytest.fixture(scope="session")
def small_data_dir(
    tmp_path_factory: pytest.TempPathFactory, jigsaw_train: pd.DataFrame, jigsaw_test: pd.DataFrame
) -> Path:
    """A small Jigsaw-format folder cut from the real files at run time (never committed)."""
    folder = tmp_path_factory.mktemp("jigsaw-small")
    sample = jigsaw_train.sample(n=4000, random_state=7)
    sample[["id", "comment_text", *LABELS]].to_csv(folder / "train.csv", index=False)
    sample[["id", "unbiased_sample"]].to_csv(folder / "train_sample_flags.csv", index=False)
    jigsaw_test.sample(n=600, random_state=7).to_csv(folder / "test_scored.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Settings pointed at a scratch folder for W&B offline runs and bundles."""
    scratch = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_DIR", str(scratch))
        patch.setenv("ARTIFACTS_DIR", str(scratch / "artifacts"))
        patch.setenv("MODEL_CACHE_DIR", str(scratch / "model-cache"))
        get_settings.cache_clear()
        yield scratch
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained(small_data_dir: Path, session_env: Path):
    """One small model trained on real comments, tracked in an offline W&B run."""
    from training.model import Hyperparameters
    from training.train import train

    hp = Hyperparameters(word_max_features=30_000, char_max_features=60_000)
    return train(small_data_dir, session_env / "artifacts" / "bundles", hp, seed=3)


@pytest.fixture(scope="session")
def scorer(trained):
    from moderation.bundle import load_bundle

    return load_bundle(trained.bundle_dir, trained.bundle_sha256)


class Stack:
    """moto DynamoDB + S3 with the template's tables and a promoted model."""

    def __init__(self, dynamodb, s3, settings) -> None:
        self.dynamodb, self.s3, self.settings = dynamodb, s3, settings

    def items(self, kind: str | None = None) -> list[dict]:
        from moderation.store import deserialize

        raw = self.dynamodb.scan(TableName=self.settings.predictions_table)["Items"]
        items = [deserialize(i) for i in raw]
        return [i for i in items if kind is None or i.get("type") == kind]

    def cache_items(self) -> list[dict]:
        from moderation.store import deserialize

        raw = self.dynamodb.scan(TableName=self.settings.cache_table)["Items"]
        return [deserialize(i) for i in raw]


@pytest.fixture
def empty_stack(session_env):
    """Tables and bucket from template.yaml in moto, no model registered."""
    import boto3
    from moto import mock_aws

    from api.app import get_service
    from moderation.infra import create_resources

    with mock_aws():
        settings = get_settings()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        create_resources(settings, dynamodb, s3)
        get_service.cache_clear()
        yield Stack(dynamodb, s3, settings)
        get_service.cache_clear()


@pytest.fixture
def stack(empty_stack, trained):
    from moderation.registry import ModelRegistry

    registry = ModelRegistry(empty_stack.settings.model_bucket, empty_stack.s3)
    entry = registry.register(trained.bundle_dir)
    registry.promote(entry.version, "production")
    return empty_stack


@pytest.fixture
def client(stack):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
