"""Secret scan of the repository (issue 8): no secret in a git-tracked file beyond the audited
baseline ``.secrets.baseline``, and the scan does catch a planted AWS key.

Offline and in-process (detect-secrets with the baseline's own plugins and filters, as
``.ci/security`` runs its hook). pip-audit needs the network, so it runs in ``.ci/security``.
"""

import json
import random
import shutil
import string
import subprocess
from contextlib import chdir
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import transient_settings

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / ".secrets.baseline"


def _baseline() -> dict:
    return json.loads(BASELINE.read_text())


def _scan(root: Path, files: list[str], baseline: dict) -> SecretsCollection:
    """Findings in ``files`` (relative to ``root``) that the baseline does not hold. Scanned
    from inside ``root``, as the hook runs: findings compare by relative file name."""
    found = SecretsCollection()
    with chdir(root), transient_settings(baseline):
        for name in files:
            found.scan_file(name)
    return found - SecretsCollection.load_from_baseline(baseline)


def _describe(secrets: SecretsCollection) -> list[str]:
    return [f"{name}:{secret.line_number}: {secret.type}" for name, secret in secrets]


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the scan covers git-tracked files")
    return [
        name
        for name in listed.split("\0")
        if name and name != BASELINE.name and (REPO / name).is_file()
    ]


def _fake_aws_credentials() -> tuple[str, str]:
    """Built at run time so this file itself holds no key-shaped string."""
    rng = random.Random(8)
    key_id = "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
    secret = "".join(rng.choices(string.ascii_letters + string.digits + "/+", k=40))
    return key_id, secret


def test_baseline_holds_only_audited_placeholders():
    baseline = _baseline()
    entries = [entry for entries in baseline["results"].values() for entry in entries]
    assert entries, "an empty baseline would make the audit below vacuous"
    unaudited = [e for e in entries if e.get("is_secret") is not False]
    assert not unaudited, f"baseline entries nobody has audited: {unaudited}"


def test_no_secrets_beyond_the_baseline():
    new = _scan(REPO, _tracked_files(), _baseline())
    assert not new, (
        "possible secrets in tracked files (remove them, or if they are placeholders add them "
        "to the baseline: .venv/bin/detect-secrets scan --baseline .secrets.baseline, then set "
        '"is_secret": false on the new entries):\n' + "\n".join(_describe(new))
    )


def test_a_planted_aws_key_is_detected(tmp_path: Path):
    name = "bench/api.py"  # holds a baselined placeholder, which must stay quiet
    copy = tmp_path / name
    copy.parent.mkdir(parents=True)
    shutil.copy(REPO / name, copy)
    baseline = _baseline()
    assert not _scan(tmp_path, [name], baseline), "the unmodified copy must scan clean"

    key_id, secret = _fake_aws_credentials()
    lines = copy.read_text().splitlines()
    planted_at = len(lines) + 1
    lines += [f'AWS_ACCESS_KEY_ID = "{key_id}"', f'AWS_SECRET_ACCESS_KEY = "{secret}"']
    copy.write_text("\n".join(lines) + "\n")

    new = _scan(tmp_path, [name], baseline)
    types = {secret.type for _, secret in new}
    assert "AWS Access Key" in types, _describe(new)
    assert {secret.line_number for _, secret in new} <= {planted_at, planted_at + 1}
