"""The local stack as child processes, as ``make run`` starts it: moto's server (the AWS
stand-in), the model bootstrap, the API under uvicorn, the stream runner feeding the
aggregator, and optionally the moderator UI and the dashboard under Streamlit. The end-to-end
tests and the load benchmark start it on free loopback ports."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from dotenv import dotenv_values

from local.moto_server import moto_status
from moderation.settings import Settings
from moderation.stores.dynamo import deserialize

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 90, interval: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready within {timeout:.0f} s")


@dataclass
class LocalStack:
    env: dict[str, str]
    logs: Path
    api_url: str = ""
    web_url: str = ""
    dashboard_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def start(self, name: str, command: list[str], append: bool = False, **env: str) -> None:
        log = (self.logs / f"{name}.log").open("a" if append else "w")
        self.processes[name] = subprocess.Popen(
            command, cwd=REPO, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def healthy(self, name: str, url: str) -> bool:
        """Whether ``url`` answers 200; raises at once when process ``name`` has exited."""
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode})")
        return httpx.get(url, timeout=2).status_code == 200

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def _scan(self, kind: str, names: dict[str, str], **arguments: Any) -> Any:
        return (
            self.client("dynamodb")
            .get_paginator("scan")
            .paginate(
                TableName=Settings().predictions_table,
                FilterExpression="#t = :t",
                ExpressionAttributeNames={"#t": "type", **names},
                ExpressionAttributeValues={":t": {"S": kind}},
                **arguments,
            )
        )

    def items(self, kind: str, fields: list[str] | None = None) -> list[dict]:
        """Every item of ``kind`` (prediction, feedback) in the prediction log, with only
        ``fields`` when given (moto serialises every attribute value slowly)."""
        names: dict[str, str] = {}
        arguments: dict[str, Any] = {}
        if fields:
            names = {f"#f{i}": name for i, name in enumerate(fields)}
            arguments["ProjectionExpression"] = ", ".join(names)
        pages = self._scan(kind, names, **arguments)
        return [deserialize(item) for page in pages for item in page["Items"]]

    def count(self, kind: str) -> int:
        return sum(page["Count"] for page in self._scan(kind, {}, Select="COUNT"))

    def aggregate_totals(self, counters: list[str]) -> dict[str, int]:
        """Counter totals over every hourly bucket of every version (ALL)."""
        pages = (
            self.client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=Settings().aggregates_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "hour#ALL"}},
                ProjectionExpression=", ".join(f"#c{i}" for i in range(len(counters))),
                ExpressionAttributeNames={f"#c{i}": name for i, name in enumerate(counters)},
            )
        )
        totals = dict.fromkeys(counters, 0)
        for page in pages:
            for item in page["Items"]:
                for name, value in deserialize(item).items():
                    totals[name] += int(value)
        return totals

    def wait_for_aggregator(self, timeout: float = 180) -> None:
        """Until every logged prediction and feedback is counted in the aggregates."""

        def caught_up() -> bool:
            totals = self.aggregate_totals(["requests", "feedback"])
            return totals == {
                "requests": self.count("prediction"),
                "feedback": self.count("feedback"),
            }

        wait_until(caught_up, "the aggregator catching up with the log", timeout, interval=1)

    def seed(self, count: int) -> None:
        """Real test-set comments, feedback and review decisions through the API, then wait
        until the aggregator has counted them (``make seed-traffic``)."""
        subprocess.run(
            [sys.executable, "-m", "local", "seed", "--count", str(count)],
            cwd=REPO,
            env={**self.env, "API_URL": self.api_url},
            check=True,
            capture_output=True,
            timeout=300,
        )
        self.wait_for_aggregator()

    def start_moto(self) -> float:
        """Start (or restart) moto on the stack's port; seconds until it says it is ready."""
        started = time.perf_counter()
        self.start("moto", [sys.executable, "-m", "local", "moto"], append=True)
        wait_moto(self)
        return time.perf_counter() - started

    def kill(self, name: str) -> None:
        """SIGKILL one process (a crash: no shutdown, no last snapshot)."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self, timeout: float = 30) -> None:
        """Stop every process as Ctrl-C does (SIGTERM; SIGKILL after ``timeout``)."""
        for process in reversed(list(self.processes.values())):
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def wait_moto(stack: LocalStack, timeout: float = 180) -> None:
    """Until moto says it is ready; fails at once when the moto process has exited."""
    endpoint = stack.env["AWS_ENDPOINT_URL"]

    def ready() -> bool:
        process = stack.processes.get("moto")
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"moto exited ({process.returncode}):\n{stack.log('moto')}")
        status = moto_status(endpoint, timeout=1)
        return bool(status and status.get("ready"))

    wait_until(ready, "moto", timeout, interval=0.1)


def stack_env(state: Path, artifacts_dir: Path, moto_port: int | None = None) -> dict[str, str]:
    """The environment ``make run``'s processes get, on free loopback ports."""
    moto_port = moto_port or free_port()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "MOTO_PORT": str(moto_port),
        "LOCAL_STATE_DIR": str(state),
        "ARTIFACTS_DIR": str(artifacts_dir),
        "MODEL_CACHE_DIR": str(state / "model-cache"),
        "PYTHONUNBUFFERED": "1",
        # the local admin key, as make run gets it
        "ADMIN_API_KEY": dotenv_values(REPO / "local.env")["ADMIN_API_KEY"] or "",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def start_stack(
    state: Path, artifacts_dir: Path, with_ui: bool = True, **extra_env: str
) -> LocalStack:
    """Start the services on free loopback ports, serving the latest bundle in
    ``artifacts_dir`` (trained there if there is none); ``state`` may hold an earlier run's
    state, which is loaded. ``stack.timings`` says when moto and the API were ready. On
    failure, stops what started and raises with every service's log tail."""
    started = time.perf_counter()
    env = {**stack_env(state, artifacts_dir), **extra_env}
    stack = LocalStack(env=env, logs=state)
    state.mkdir(parents=True, exist_ok=True)
    try:
        stack.start("moto", [sys.executable, "-m", "local", "moto"], append=True)
        api_port = free_port()
        stack.api_url = f"http://127.0.0.1:{api_port}"
        # as make run: the bootstrap, then the API, in one process (python -m local api)
        stack.start("api", [sys.executable, "-m", "local", "api", "--port", str(api_port)])
        stack.start("streams", [sys.executable, "-m", "local", "streams", "--interval", "0.2"])
        stack.start("webhooks", [sys.executable, "-m", "local", "webhooks", "--interval", "0.2"])
        wait_moto(stack)
        stack.timings["moto_ready_s"] = time.perf_counter() - started
        ready = [("api", f"{stack.api_url}/health")]
        if with_ui:
            web_port, dashboard_port = free_port(), free_port()
            stack.web_url = f"http://127.0.0.1:{web_port}"
            stack.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
            streamlit = [str(BIN / "streamlit"), "run", "--server.headless", "true",
                         "--browser.gatherUsageStats", "false", "--client.toolbarMode",
                         "minimal", "--server.address",
                         "127.0.0.1", "--server.port"]  # fmt: skip
            stack.start("web", [*streamlit, str(web_port), "web/app.py"], API_URL=stack.api_url)
            stack.start("dashboard", [*streamlit, str(dashboard_port), "dashboard/app.py"])
            ready += [
                ("web", f"{stack.web_url}/_stcore/health"),
                ("dashboard", f"{stack.dashboard_url}/_stcore/health"),
            ]
        for name, url in ready:
            # the first start registers the bundle (and trains one when there is none)
            wait_until(lambda n=name, u=url: stack.healthy(n, u), name, timeout=600)
            stack.timings[f"{name}_ready_s"] = time.perf_counter() - started
    except (TimeoutError, RuntimeError) as exc:
        logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in stack.processes)
        stack.stop()
        raise RuntimeError(f"local stack did not start: {exc}\n{logs}") from exc
    return stack
