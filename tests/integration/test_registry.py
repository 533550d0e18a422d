"""The S3 registry against moto S3 (in-process ``mock_aws``), and the W&B edge: a real offline
run, and a substitute of the server-side registry client."""

import json
import logging
import shutil
import threading
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from moderation.errors import BundleError, PromotionRefused, RegistryError
from moderation.model.bundle import BUNDLE_FILES, load_bundle, sha256_file
from moderation.settings import get_settings
from moderation.stores.registry import ModelRegistry
from tests.fakes import FakeServerRegistry
from training import promote, register, tracking

BUCKET = "test-models"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def registry(s3) -> ModelRegistry:
    return ModelRegistry(BUCKET, s3)


def with_auc(bundle: Path, tmp_path: Path, auc: float) -> Path:
    """A copy of ``bundle`` claiming another validation ROC-AUC (manifest rewritten)."""
    copy = tmp_path / f"auc-{auc}"
    shutil.copytree(bundle, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["metrics"]["validation"]["mean_roc_auc"] = auc
    (copy / "metadata.json").write_text(json.dumps(meta))
    manifest = {name: sha256_file(copy / name) for name in BUNDLE_FILES}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_register_assigns_increasing_versions_and_stamps_them(registry, trained, tmp_path):
    first = registry.register(trained.bundle_dir)
    second = registry.register(trained.bundle_dir)
    assert (first.version, second.version) == ("v1", "v2")
    assert [e.version for e in registry.versions()] == ["v1", "v2"]
    # the version is inside the content-addressed bundle, so the two differ
    assert first.bundle_sha256 != second.bundle_sha256
    scorer = load_bundle(registry.download(second, tmp_path), second.bundle_sha256)
    assert scorer.version == "v2"


def test_a_lost_race_for_a_version_number_takes_the_next(registry, trained, monkeypatch):
    # GIVEN a registration that listed versions before a rival claimed v1
    registry.register(trained.bundle_dir)
    real_versions = registry.versions
    stale = iter([[]])
    monkeypatch.setattr(registry, "versions", lambda: next(stale, None) or real_versions())
    # WHEN it registers  THEN the conditional put refuses v1 and it records v2
    assert registry.register(trained.bundle_dir).version == "v2"
    assert [e.version for e in real_versions()] == ["v1", "v2"]


def test_alias_resolves_from_s3_and_promotion_guards_quality(registry, trained, tmp_path):
    good = registry.register(with_auc(trained.bundle_dir, tmp_path, 0.99))
    worse = registry.register(with_auc(trained.bundle_dir, tmp_path, 0.90))
    registry.promote(good.version, "production")
    assert registry.resolve("production").version == good.version
    with pytest.raises(PromotionRefused, match="below production"):
        registry.promote(worse.version, "production")
    assert registry.resolve("production").version == good.version
    record = registry.promote(worse.version, "production", force=True)
    assert record.previous_version == good.version
    assert registry.resolve("production").version == worse.version


def test_unknown_alias_and_version_are_clear_errors(registry):
    with pytest.raises(RegistryError, match="alias 'production' is not set"):
        registry.resolve("production")
    with pytest.raises(RegistryError, match="no version v9"):
        registry.resolve("v9")


def test_corrupted_object_in_s3_is_refused_at_download(registry, s3, trained, tmp_path):
    entry = registry.register(trained.bundle_dir)
    s3.put_object(Bucket=BUCKET, Key=entry.prefix + "arrays.npz", Body=b"not the model")
    with pytest.raises(BundleError, match="sha256"):
        registry.download(entry, tmp_path / "cache")
    assert not (tmp_path / "cache" / entry.bundle_sha256).exists()


def test_alias_is_never_missing_while_it_moves(registry, trained):
    # GIVEN production set; WHEN it is moved repeatedly while a reader polls
    first = registry.register(trained.bundle_dir)
    second = registry.register(trained.bundle_dir)
    registry.promote(first.version, "production")
    seen: list[str] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(registry.resolve("production").version)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(10):
        registry.promote(second.version, "production", force=True)
        registry.promote(first.version, "production", force=True)
    stop.set()
    thread.join()
    # THEN every read found a whole alias record
    assert seen and set(seen) <= {"v1", "v2"}


def test_training_run_is_a_real_offline_wandb_run(trained):
    run_dir = Path(trained.run_dir).parent
    assert run_dir.name.startswith("offline-run-")
    (log,) = run_dir.glob("run-*.wandb")  # what `wandb sync` uploads later
    records = log.read_bytes()
    meta = json.loads((trained.bundle_dir / "metadata.json").read_text())
    for key in ("git_commit", "git_dirty", "seed", "naive_bayes", "validation_fraction"):
        assert key.encode() in records
    assert meta["git_commit"].encode() in records
    assert all(f["sha256"].encode() in records for f in meta["data"]["files"])
    assert b"validation/mean_roc_auc" in records and b"toxic-comment-bundle" in records


def test_cli_register_and_promote_sync_wandb_when_online(s3, trained, monkeypatch):
    fake = FakeServerRegistry()
    monkeypatch.setenv("MODEL_BUCKET", BUCKET)
    get_settings.cache_clear()
    monkeypatch.setattr(register, "server_registry", lambda settings: fake)
    monkeypatch.setattr(promote, "server_registry", lambda settings: fake)
    runner = CliRunner()
    out = runner.invoke(register.app, ["--bundle", str(trained.bundle_dir)])
    assert out.exit_code == 0, out.output
    assert "registered v1" in out.output
    out = runner.invoke(promote.app, ["--version", "v1", "--alias", "production"])
    assert out.exit_code == 0, out.output
    prefix = ModelRegistry(BUCKET, s3).get("v1").prefix
    assert fake.calls == [
        ("link", "v1", f"s3://{BUCKET}/{prefix}"),
        ("alias", "v1", "production"),
    ]
    get_settings.cache_clear()


def test_offline_registry_sync_is_skipped_with_a_clear_line(caplog):
    with caplog.at_level(logging.WARNING):
        assert tracking.server_registry(get_settings()) is None
    assert "W&B is offline" in caplog.text and "S3 registry" in caplog.text


def test_promote_cli_refusal_exits_non_zero(s3, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_BUCKET", BUCKET)
    get_settings.cache_clear()
    registry = ModelRegistry(BUCKET, s3)
    registry.register(with_auc(trained.bundle_dir, tmp_path, 0.99))
    registry.register(with_auc(trained.bundle_dir, tmp_path, 0.5))
    registry.promote("v1", "production")
    out = CliRunner().invoke(promote.app, ["--version", "v2"])
    assert out.exit_code == 1 and "--force" in out.output
    get_settings.cache_clear()
