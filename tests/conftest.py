"""What every layer shares: an environment that never reaches a real AWS account or W&B
server, the committed Jigsaw sample, and one small model trained on it (session-scoped:
trained once, and only when a test asks for it).

Layers: ``unit`` (no data, no moto), ``model`` (trains on the sample), ``integration``
(moto in-process), ``e2e`` (the local stack and Debian's chromium).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from moderation.settings import get_settings
from training.data import SAMPLE_DIR

# Tests never talk to a real AWS account or W&B server; W&B runs offline (its edge).
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
for name in ("WANDB_API_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE", "DATA_DIR"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def jigsaw_train() -> pd.DataFrame:
    """The committed sample's training rows, with their real-rate flags."""
    frame = pd.read_csv(SAMPLE_DIR / "train.csv.xz", dtype={"id": str})
    flags = pd.read_csv(SAMPLE_DIR / "train_sample_flags.csv.xz", dtype={"id": str})
    return frame.merge(flags, on="id")


@pytest.fixture(scope="session")
def jigsaw_test() -> pd.DataFrame:
    """The committed sample's held-out rows (training-set comments never trained on)."""
    return pd.read_csv(SAMPLE_DIR / "test_scored.csv.xz", dtype={"id": str})


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Settings pointed at a scratch folder for W&B offline runs and bundles."""
    scratch = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_DIR", str(scratch))
        patch.setenv("ARTIFACTS_DIR", str(scratch / "artifacts"))
        patch.setenv("MODEL_CACHE_DIR", str(scratch / "model-cache"))
        patch.setenv("DATA_DIR", str(SAMPLE_DIR))
        get_settings.cache_clear()
        yield scratch
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained(session_env: Path):
    """One small model trained on the committed sample, tracked in an offline W&B run."""
    from training.model import Hyperparameters
    from training.train import train

    hp = Hyperparameters(word_max_features=30_000, char_max_features=60_000)
    return train(SAMPLE_DIR, session_env / "artifacts" / "bundles", hp, seed=3)


@pytest.fixture(scope="session")
def scorer(trained):
    from moderation.model.bundle import load_bundle

    return load_bundle(trained.bundle_dir, trained.bundle_sha256)
