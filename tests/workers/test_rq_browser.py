"""Browser end to end with DIGITLAB_REDIS_URL: the job waits for a worker, then its chart moves in a
real Chromium while a worker process trains it, and the finished run is listed and linked."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    assert_no_exception,
    mnist_dir,
    require_browser,
    start_app_or_fail,
)
from tests.browser.test_browser_train import chart_points

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = (
    "/Train?preset=custom&blocks=16-3-1-p-0_32-3-1-p-0.1&dense_units=64&batch_size=32"
    "&epochs=2&train_samples=8000&learning_rate=0.002"
)


@pytest.fixture(scope="module")
def rq_app_server(redis_server, tmp_path_factory):
    """`streamlit run app.py` with DIGITLAB_REDIS_URL pointing at the test's redis-server."""
    require_browser()
    base = tmp_path_factory.mktemp("rq-e2e")
    runs, examples = base / "runs", base / "examples"
    server = start_app_or_fail(
        {
            "MNIST_DIR": str(mnist_dir()),
            "DIGITLAB_RUNS_DIR": str(runs),
            "DIGITLAB_EXAMPLES_DIR": str(examples),
            "DIGITLAB_REDIS_URL": redis_server.url,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
        base / "server.log",
    )
    yield server
    server.stop()


def test_a_job_waits_then_trains_on_a_worker_with_the_chart_moving(
    browser, rq_app_server, redis_url, start_worker
):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(rq_app_server.url + SETUP)
        expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Place in the queue: 1")).to_be_visible(timeout=60_000)
        start_worker(redis_url, "w-browser")
        expect(page.get_by_text(re.compile(r"Running — .*worker w-browser"))).to_be_visible(
            timeout=120_000
        )
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        while len({n for n in seen if n > 0}) < 2:
            assert time.monotonic() < deadline, f"the chart did not move: {seen}"
            seen.add(chart_points(page))
            page.wait_for_timeout(300)
        expect(page.get_by_text(re.compile("Finished — Test accuracy")).first).to_be_visible(
            timeout=180_000
        )
        runs = [p.name for p in rq_app_server.runs_dir.iterdir()]
        assert len(runs) == 1
        expect(page.get_by_role("link", name=f"Explore the mistakes of {runs[0]}")).to_be_visible()
        expect(page.locator('[data-testid="stDataFrame"]').last).to_contain_text(
            runs[0], timeout=30_000
        )
        assert_no_exception(page)
    finally:
        page.context.close()
