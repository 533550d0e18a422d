"""The whole local stack as subprocesses, as ``make run`` starts it: moto's server (the AWS
stand-in), the API under uvicorn, the stream runner feeding the aggregator, the moderator UI
and the dashboard under Streamlit. Browser tests drive Debian's chromium through Playwright."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest

from moderation.settings import Settings
from moderation.store import deserialize

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready within {timeout:.0f} s")


@dataclass
class LocalStack:
    env: dict[str, str]
    logs: Path
    api_url: str = ""
    web_url: str = ""
    dashboard_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str], **env: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            command, cwd=REPO, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def client(self, service: str):  # noqa: ANN201 - boto3 clients have generated types
        return boto3.client(
            service, endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name="us-east-1"
        )

    def items(self, kind: str) -> list[dict]:
        """Every item of ``kind`` (prediction, feedback) in the prediction log."""
        dynamodb, settings = self.client("dynamodb"), Settings()
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=settings.predictions_table,
            FilterExpression="#t = :t",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={":t": {"S": kind}},
        )
        return [deserialize(item) for page in pages for item in page["Items"]]

    def aggregate_total(self, counter: str) -> int:
        dynamodb, settings = self.client("dynamodb"), Settings()
        pages = dynamodb.get_paginator("query").paginate(
            TableName=settings.aggregates_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "hour#ALL"}},
            ProjectionExpression="#c",
            ExpressionAttributeNames={"#c": counter},
        )
        return sum(int(deserialize(i).get(counter, 0)) for page in pages for i in page["Items"])

    def wait_for_aggregator(self, timeout: float = 120) -> None:
        """Until every logged prediction and feedback is counted in the aggregates."""
        wait_until(
            lambda: (
                self.aggregate_total("requests") == len(self.items("prediction"))
                and self.aggregate_total("feedback") == len(self.items("feedback"))
            ),
            "the aggregator catching up with the log",
            timeout,
        )

    def seed(self, count: int) -> None:
        """Real test-set comments, feedback and review decisions through the API, then wait
        until the aggregator has counted them (``make seed-traffic``)."""
        subprocess.run(
            [sys.executable, "-m", "training.localstack", "seed", "--count", str(count)],
            cwd=REPO,
            env={**self.env, "API_URL": self.api_url},
            check=True,
            capture_output=True,
            timeout=300,
        )
        self.wait_for_aggregator()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory, trained, session_env) -> Iterator[LocalStack]:
    """``make run``'s services on free loopback ports, serving the small trained model."""
    state = tmp_path_factory.mktemp("local-stack")
    moto_port = free_port()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_PORT": str(moto_port),
        "LOCAL_STATE_DIR": str(state),
        "ARTIFACTS_DIR": str(session_env / "artifacts"),
        "MODEL_CACHE_DIR": str(state / "model-cache"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    stack = LocalStack(env=env, logs=state)
    try:
        stack.start("moto", [sys.executable, "-m", "training.localstack", "moto"])
        subprocess.run(
            [sys.executable, "-m", "training.localstack", "bootstrap"],
            cwd=REPO, env=env, check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        api_port, web_port, dashboard_port = free_port(), free_port(), free_port()
        stack.api_url = f"http://127.0.0.1:{api_port}"
        stack.web_url = f"http://127.0.0.1:{web_port}"
        stack.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        stack.start(
            "api",
            [str(BIN / "uvicorn"), "api.app:app", "--host", "127.0.0.1", "--port", str(api_port)],
        )
        stack.start(
            "streams", [sys.executable, "-m", "training.localstack", "streams", "--interval", "0.2"]
        )
        streamlit = [str(BIN / "streamlit"), "run", "--server.headless", "true",
                     "--browser.gatherUsageStats", "false", "--server.address",
                     "127.0.0.1", "--server.port"]  # fmt: skip
        stack.start("web", [*streamlit, str(web_port), "web/app.py"], API_URL=stack.api_url)
        stack.start("dashboard", [*streamlit, str(dashboard_port), "dashboard/app.py"])
        for name, url in (
            ("api", f"{stack.api_url}/health"),
            ("web", f"{stack.web_url}/_stcore/health"),
            ("dashboard", f"{stack.dashboard_url}/_stcore/health"),
        ):
            wait_until(lambda u=url: httpx.get(u, timeout=2).status_code == 200, name)
        yield stack
    except (TimeoutError, subprocess.CalledProcessError) as exc:
        logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in stack.processes)
        pytest.fail(f"local stack did not start: {exc}\n{getattr(exc, 'stderr', '')}\n{logs}")
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: .ci/run installs it (apt-get)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
