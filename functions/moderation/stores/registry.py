"""The model registry, kept in S3 alone: what serving trusts, online or offline.

Layout in the model bucket:
- ``bundles/<sha256>/<file>``: content-addressed bundle files (immutable).
- ``registry/versions/<N, eight digits>.json`` (``v12`` is ``00000012.json``, so a listing
  sorts by version): one record per version ``vN``, claimed with a conditional
  put (``If-None-Match: *``), so two concurrent registrations never get the same number.
- ``registry/aliases/<alias>.json``: the version an alias points at, with the whole record,
  replaced by a single PUT: readers see the old or the new alias, never a gap.
"""

import hashlib
import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from moderation.errors import BundleError, PromotionRefused, RegistryError
from moderation.log import logger
from moderation.model.bundle import (
    BUNDLE_FILES,
    MANIFEST_FILE,
    METADATA_FILE,
    BundleMetadata,
    manifest_sha256,
    read_metadata,
    stamp_version,
    verify_bundle,
)

VERSION_RE = re.compile(r"^v([1-9][0-9]{0,7})$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class RegistryEntry(BaseModel):
    version: str
    bundle_sha256: str
    prefix: str
    model_name: str
    validation_mean_roc_auc: float | None
    test_mean_roc_auc: float | None
    created_at: datetime
    registered_at: datetime


class AliasRecord(BaseModel):
    alias: str
    entry: RegistryEntry
    previous_version: str | None
    updated_at: datetime


class ModelRegistry:
    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    @cached_property
    def s3(self) -> Any:
        return self._client or boto3.client("s3")

    # reading
    def _get_json(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise RegistryError(f"s3://{self.bucket}/{key}: {exc}") from exc
        return json.loads(body)

    @staticmethod
    def _version_key(number: int) -> str:
        return f"registry/versions/{number:08d}.json"

    def versions(self) -> list[RegistryEntry]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix="registry/versions/"
        )
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        return [RegistryEntry.model_validate(self._get_json(key)) for key in keys]

    def get(self, version: str) -> RegistryEntry:
        match = VERSION_RE.match(version)
        if not match:
            raise RegistryError(f"{version!r} is not a version like v3")
        record = self._get_json(self._version_key(int(match.group(1))))
        if record is None:
            raise RegistryError(f"no version {version} in s3://{self.bucket}")
        return RegistryEntry.model_validate(record)

    def alias(self, alias: str) -> AliasRecord | None:
        record = self._get_json(f"registry/aliases/{alias}.json")
        return AliasRecord.model_validate(record) if record else None

    def resolve(self, name: str) -> RegistryEntry:
        """A version (``v3``) or an alias (``production``), from S3 alone."""
        if VERSION_RE.match(name):
            return self.get(name)
        record = self.alias(name)
        if record is None:
            raise RegistryError(f"alias {name!r} is not set in s3://{self.bucket}")
        return record.entry

    # writing
    def register(self, bundle_dir: Path, attempts: int = 20) -> RegistryEntry:
        """Upload a bundle (stamped with its new version) and record it as ``vN``."""
        verify_bundle(bundle_dir)
        for _ in range(attempts):
            existing = self.versions()
            number = int(existing[-1].version[1:]) + 1 if existing else 1
            version = f"v{number}"
            with tempfile.TemporaryDirectory() as scratch:
                stamped = Path(scratch)
                sha = stamp_version(bundle_dir, stamped, version)
                prefix = f"bundles/{sha}/"
                for name in (*BUNDLE_FILES, MANIFEST_FILE):
                    # One PUT per file (not multipart): simple, and replayable locally.
                    self.s3.put_object(
                        Bucket=self.bucket, Key=prefix + name, Body=(stamped / name).read_bytes()
                    )
                metadata = read_metadata(stamped)
            entry = RegistryEntry(
                version=version,
                bundle_sha256=sha,
                prefix=prefix,
                model_name=metadata.model_name,
                validation_mean_roc_auc=metadata.metrics.get("validation", {}).get("mean_roc_auc"),
                test_mean_roc_auc=(metadata.metrics.get("test") or {}).get("mean_roc_auc"),
                created_at=metadata.created_at,
                registered_at=datetime.now(UTC),
            )
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self._version_key(number),
                    Body=entry.model_dump_json(indent=1).encode(),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                ):
                    continue  # another registration claimed vN first: take the next number
                raise RegistryError(f"cannot record {version}: {exc}") from exc
            logger.info("registered %s as s3://%s/%s", version, self.bucket, prefix)
            return entry
        raise RegistryError(f"could not claim a version number after {attempts} attempts")

    def promote(self, version: str, alias: str, force: bool = False) -> AliasRecord:
        """Point ``alias`` at ``version``; refuses a lower validation mean ROC-AUC than the
        current production model unless ``force``."""
        if not ALIAS_RE.match(alias):
            raise RegistryError(f"{alias!r} is not a valid alias name")
        target = self.get(version)
        current = self.alias(alias)
        production = self.alias("production")
        if production and not force:
            bar = production.entry.validation_mean_roc_auc
            score = target.validation_mean_roc_auc
            if bar is not None and (score is None or score < bar):
                raise PromotionRefused(
                    f"{version} validation mean ROC-AUC {score} is below production "
                    f"{production.entry.version}'s {bar:.5f}; use --force to promote anyway"
                )
        record = AliasRecord(
            alias=alias,
            entry=target,
            previous_version=current.entry.version if current else None,
            updated_at=datetime.now(UTC),
        )
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"registry/aliases/{alias}.json",
            Body=record.model_dump_json(indent=1).encode(),
            ContentType="application/json",
        )
        logger.info("alias %s -> %s", alias, version)
        return record

    # serving
    def metadata(self, entry: RegistryEntry) -> BundleMetadata:
        """A registered bundle's ``metadata.json`` alone (two small GETs, no weights), checked
        against its manifest and the manifest against the bundle's address. S3 errors
        propagate; bad content is a ``BundleError``."""
        manifest_raw = self._get_bytes(entry.prefix + MANIFEST_FILE)
        metadata_raw = self._get_bytes(entry.prefix + METADATA_FILE)
        try:
            manifest = json.loads(manifest_raw)
            if manifest_sha256(manifest) != entry.bundle_sha256:
                raise BundleError("manifest does not match the registered bundle")
            if hashlib.sha256(metadata_raw).hexdigest() != manifest.get(METADATA_FILE):
                raise BundleError("metadata.json fails its sha256 check")
            return BundleMetadata.model_validate_json(metadata_raw)
        except (ValueError, ValidationError) as exc:
            raise BundleError(f"unreadable bundle metadata ({exc})") from exc

    def _get_bytes(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, entry: RegistryEntry, cache_dir: Path) -> Path:
        """The bundle's files in ``cache_dir/<sha256>``, verified; reused when already there."""
        target = cache_dir / entry.bundle_sha256
        if target.is_dir():
            try:
                verify_bundle(target, entry.bundle_sha256)
                return target
            except BundleError:
                shutil.rmtree(target, ignore_errors=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".partial-"))
        try:
            for name in (*BUNDLE_FILES, MANIFEST_FILE):
                self.s3.download_file(self.bucket, entry.prefix + name, str(partial / name))
            verify_bundle(partial, entry.bundle_sha256)
            partial.rename(target)
        except ClientError as exc:
            raise BundleError(f"cannot download {entry.version}: {exc}") from exc
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target
