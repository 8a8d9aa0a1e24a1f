"""Browser end-to-end support: a real Streamlit server and headless Debian Chromium via Playwright.

tests/conftest.py imports the fixtures, so every test module shares one server and browser.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.server import (
    CHROMIUM,
    ROOT,
    AppServer,
    ServerDidNotStart,
    launch_chromium,
    start_app,
)

ADMIN_TOKEN = "operator-token-for-tests"


def _patient_expectations() -> None:
    """Every expect() waits up to 60 s: a 2-core machine running the suite is busy."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)


try:
    _patient_expectations()
except ImportError:  # no Playwright: require_browser() says so when a browser test runs
    pass


def mnist_dir() -> Path:
    """The shared MNIST folder beside the repository (or $MNIST_DIR)."""
    return Path(os.environ.get("MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")


def require_browser() -> None:
    """Skip locally when Chromium or Playwright is missing; in CI that is a failure."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip)")
    if missing:
        message = f"browser tests need {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install them: see .ci/run)")
        pytest.skip(message)


def start_app_or_fail(env_overrides: dict[str, str], log_path: Path) -> AppServer:
    """start_app for a fixture: a server that does not start fails the test with its log."""
    try:
        return start_app(env_overrides, log_path=log_path)
    except ServerDidNotStart as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> Iterator[AppServer]:
    """Start `streamlit run app.py` on a free port with empty runs and examples folders."""
    require_browser()
    base = tmp_path_factory.mktemp("e2e")
    runs, examples = base / "runs", base / "examples"
    runs.mkdir()
    examples.mkdir()
    server = start_app_or_fail(
        {
            "MNIST_DIR": str(mnist_dir()),
            "DIGITLAB_RUNS_DIR": str(runs),
            "DIGITLAB_EXAMPLES_DIR": str(examples),
            "DIGITLAB_MAX_JOBS": "1",
            "DIGITLAB_ADMIN_TOKEN": ADMIN_TOKEN,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
        base / "server.log",
    )
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server):
    """A fresh browser tab (its own Streamlit session), 1400x1000."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


def wait_idle(tab, timeout: float = 60_000) -> None:
    """Wait until the script has finished its run, so what is on screen is its final output."""
    from playwright.sync_api import expect

    expect(tab.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=timeout
    )


def pick_option(tab, combobox: str, option: str, timeout: float = 60.0) -> None:
    """Choose an option of a selectbox, again if a rerun redraws the list under the click."""
    deadline = time.monotonic() + timeout
    box = tab.get_by_role("combobox", name=combobox, exact=True)
    while True:
        wait_idle(tab)
        try:
            box.click(timeout=10_000)
            tab.get_by_role("option", name=option, exact=True).click(timeout=10_000)
        except Exception:  # noqa: BLE001 - a rerun detached the list: try again
            if time.monotonic() > deadline:
                raise
            continue
        if option in (box.input_value() or ""):
            return
        assert time.monotonic() < deadline, f"{combobox} never showed {option}"


def assert_no_exception(p) -> None:
    """Fail on a Python exception box shown by Streamlit."""
    boxes = p.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()
