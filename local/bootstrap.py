"""Bootstrap of the local stack: every table and bucket of template.yaml, and a served model.

A model already behind the alias is reused; else the newest trained bundle in
``ARTIFACTS_DIR`` is registered and promoted; else one is trained first.
"""

import logging
import os
from pathlib import Path

from local.moto_server import wait_for_moto
from local.resources import create_resources
from moderation.errors import BundleError, RegistryError
from moderation.settings import Settings, get_settings
from moderation.stores.registry import ModelRegistry

logger = logging.getLogger("local.bootstrap")


def bootstrap(state_dir: Path) -> None:
    """Create the template's tables and bucket, and register + promote a model if none."""
    settings = get_settings()
    wait_for_moto(state_dir)
    created = create_resources(settings)
    logger.info("bootstrap: created %s", ", ".join(created) if created else "nothing (all there)")
    registry = ModelRegistry(settings.model_bucket)
    try:
        entry = registry.resolve(settings.model_alias)
        logger.info("bootstrap: %s is %s, reusing it", settings.model_alias, entry.version)
    except RegistryError:
        entry = registry.register(local_bundle(settings))
        registry.promote(entry.version, settings.model_alias, force=True)
        logger.info("bootstrap: registered and promoted %s", entry.version)
    port = os.environ.get("API_PORT", "8000")
    logger.info(
        "\n  API        http://127.0.0.1:%s  (OpenAPI docs at /docs), serving %s %s"
        "\n  AWS (moto) %s  tables %s, %s; bucket %s"
        "\n  state      %s (make reset-local starts from scratch)\n",
        port, entry.model_name, entry.version, os.environ.get("AWS_ENDPOINT_URL", "AWS"),
        settings.predictions_table, settings.cache_table, settings.model_bucket, state_dir,
    )  # fmt: skip


def local_bundle(settings: Settings) -> Path:
    """The newest trained bundle, else one trained now: on DATA_DIR, or, where that folder
    has no training file, on the small sample committed in ``training/sample``. Training is
    imported only here: scikit-learn and pandas take seconds to import."""
    from training.data import SAMPLE_DIR, find_file
    from training.model import Hyperparameters
    from training.register import latest_bundle
    from training.train import train

    try:
        bundle = latest_bundle(settings.artifacts_dir)
        logger.info("bootstrap: no model registered; using the trained bundle %s", bundle)
        return bundle
    except BundleError:
        pass
    data_dir = settings.data_dir
    if find_file(data_dir, "train.csv") is None:
        logger.warning(
            "bootstrap: no training data in %s, so this is a small DEMO model trained on the "
            "committed sample (%s); for the real one, download the Kaggle Jigsaw files "
            "(train.csv, test.csv, test_labels.csv), set DATA_DIR to their folder and run "
            "make train",
            data_dir, SAMPLE_DIR,
        )  # fmt: skip
        data_dir = SAMPLE_DIR
    else:
        logger.info("bootstrap: no model anywhere; training on %s (a few minutes)", data_dir)
    return train(data_dir, settings.artifacts_dir / "bundles", Hyperparameters()).bundle_dir
