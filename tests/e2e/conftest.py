"""The whole local stack (training/stack.py: moto, API, stream runner, moderator UI,
dashboard) as child processes; browser tests drive Debian's chromium through Playwright."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.processes import REPO, LocalStack, start_stack

SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory, trained, session_env) -> Iterator[LocalStack]:
    """``make run``'s services on free loopback ports, serving the small trained model."""
    try:
        stack = start_stack(tmp_path_factory.mktemp("local-stack"), session_env / "artifacts")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield stack
    stack.stop()


# Per module: Playwright's sync API keeps an event loop running in the main thread while it
# is open, which the Lambda handler tests (Mangum runs its own loop) must not inherit.
@pytest.fixture(scope="module")
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
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    expect.set_options(timeout=20_000)  # a Streamlit rerun on a loaded 2-core machine
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
