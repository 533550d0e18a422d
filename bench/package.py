"""Lambda package size (``make package-size``) -> bench/results/package.json.

Builds what ``sam build`` zips for both functions: functions/requirements.txt (the pins of
requirements/lambda.txt) as arm64 wheels for python3.12 on Amazon Linux 2023, plus the code
under functions/. Lambda's limit is 250 MB unzipped; our target is 100 MB. If the package ever
crossed the limit, template.yaml would switch the API to a container image (PackageType: Image)
and this check would say so.
"""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.common import write_results

REPO = Path(__file__).resolve().parents[1]
LAMBDA_LIMIT_MB = 250
TARGET_MB = 100


def deployment_size(target: Path) -> dict:
    """Install the functions' requirements for Lambda's platform into ``target``, add the
    code, zip it, and measure both."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "-q", "--no-compile",
            "-r", str(REPO / "functions/requirements.txt"), "--target", str(target),
            "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
            "--implementation", "cp", "--python-version", "3.12", "--only-binary=:all:",
        ],
        check=True,
    )  # fmt: skip
    for package in ("moderation", "api", "aggregator"):
        source = REPO / "functions" / package
        shutil.copytree(source, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    unzipped = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    archive = target.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in target.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(target))
    largest = sorted(
        ((sum(f.stat().st_size for f in d.rglob("*") if f.is_file()), d.name)
         for d in target.iterdir() if d.is_dir()),
        reverse=True,
    )[:5]  # fmt: skip
    return {
        "unzipped_mb": round(unzipped / 1e6, 1),
        "zipped_mb": round(archive.stat().st_size / 1e6, 1),
        "target_unzipped_mb": TARGET_MB,
        "lambda_limit_unzipped_mb": LAMBDA_LIMIT_MB,
        "largest_mb": {name: round(size / 1e6, 1) for size, name in largest},
        "packaging": "zip" if unzipped / 1e6 < LAMBDA_LIMIT_MB else "container image needed",
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        size = deployment_size(Path(scratch) / "lambda-package")
    path = write_results("package", size)
    print(
        f"Lambda package: {size['unzipped_mb']} MB unzipped (limit {LAMBDA_LIMIT_MB}, target "
        f"{TARGET_MB}), {size['zipped_mb']} MB zipped -> {size['packaging']}; largest: "
        + ", ".join(f"{k} {v} MB" for k, v in size["largest_mb"].items())
    )
    print(f"written to {path}")
    if size["unzipped_mb"] >= LAMBDA_LIMIT_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
