"""Lambda package (``make package-size``) -> bench/results/package.json.

Builds the zip ``sam build`` makes for every function, through the same
``functions/Makefile`` target: the pins of functions/requirements.txt as arm64 wheels for
python3.12 on Amazon Linux 2023, the code under functions/, and compiled bytecode. Measures
it unzipped and zipped (Lambda's limit is 250 MB unzipped; our target is 150 MB, of which
the bytecode is ~23 MB).

Then the reason for the bytecode: the same package built for this machine, with
``import api.handler`` timed in fresh processes that may not write bytecode (as on Lambda,
whose code folder is read-only), once as built and once with the bytecode removed (what
SAM's bundled Python builder ships).
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.common import write_results

REPO = Path(__file__).resolve().parents[1]
LAMBDA_LIMIT_MB = 250
TARGET_MB = 150
IMPORT_RUNS = 3
IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import api.handler; print(time.perf_counter() - t)"
)


def build_package(target: Path, platform: str | None = None) -> None:
    """``make -C functions build-ApiFunction`` into ``target`` (``platform``: PIP_PLATFORM,
    None for Lambda's arm64, "" for this machine's wheels)."""
    command = ["make", "-s", "-C", str(REPO / "functions"), "build-ApiFunction",
               f"ARTIFACTS_DIR={target}", f"PYTHON={sys.executable}"]  # fmt: skip
    if platform is not None:
        command.append(f"PIP_PLATFORM={platform}")
    subprocess.run(command, check=True)


def deployment_size(target: Path) -> dict:
    """Build the Lambda package into ``target``, zip it, and measure both."""
    build_package(target)
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


def _import_seconds(package: Path) -> float:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package), "PYTHONDONTWRITEBYTECODE": "1",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    # -S: no site-packages of this machine (the venv included), only the package
    done = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_SNIPPET],
        env=env, capture_output=True, text=True, check=True, cwd=package,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def import_times(scratch: Path) -> dict:
    """``import api.handler`` from a package with and without bytecode, alternating."""
    package = scratch / "host-package"
    build_package(package, platform="")
    stripped = scratch / "host-package-no-bytecode"
    shutil.copytree(package, stripped, ignore=shutil.ignore_patterns("__pycache__"))
    with_bytecode, without = [], []
    for _ in range(IMPORT_RUNS):
        without.append(_import_seconds(stripped))
        with_bytecode.append(_import_seconds(package))
    return {
        "runs": IMPORT_RUNS,
        "with_bytecode_s": round(statistics.median(with_bytecode), 3),
        "without_bytecode_s": round(statistics.median(without), 3),
        "all_with_bytecode_s": [round(s, 3) for s in with_bytecode],
        "all_without_bytecode_s": [round(s, 3) for s in without],
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        size = deployment_size(Path(scratch) / "lambda-package")
        imports = import_times(Path(scratch))
    path = write_results("package", {**size, "import_api_handler": imports})
    print(
        f"Lambda package: {size['unzipped_mb']} MB unzipped (limit {LAMBDA_LIMIT_MB}, target "
        f"{TARGET_MB}), {size['zipped_mb']} MB zipped -> {size['packaging']}; largest: "
        + ", ".join(f"{k} {v} MB" for k, v in size["largest_mb"].items())
    )
    print(
        f"import api.handler, no bytecode written: {imports['with_bytecode_s']} s as built, "
        f"{imports['without_bytecode_s']} s without the bytecode (median of {IMPORT_RUNS})"
    )
    print(f"written to {path}")
    if size["unzipped_mb"] >= LAMBDA_LIMIT_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
