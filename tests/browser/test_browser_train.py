"""Browser end to end: train, watch the chart move, switch pages and back, see the run listed."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.server import CHART_POINTS
from tests.browser.support import assert_no_exception

pytestmark = pytest.mark.browser

SETUP = (
    "/Train?preset=custom&blocks=16-3-1-p-0_32-3-1-p-0.1&dense_units=64&batch_size=32"
    "&epochs=2&train_samples=8000&learning_rate=0.002"
)
FINISHED = re.compile(r"Finished — Test accuracy")


def chart_points(p) -> int:
    return p.evaluate(CHART_POINTS)


def test_train_watch_switch_and_list(page, app_server):
    page.goto(app_server.url + SETUP)
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Running").first).to_be_visible(timeout=60_000)
    # The loss chart grows while training runs: record at least two different sizes.
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while len({n for n in seen if n > 0}) < 2:
        assert time.monotonic() < deadline, f"the chart did not move: {seen}"
        seen.add(chart_points(page))
        page.wait_for_timeout(300)
    assert page.get_by_text(FINISHED).count() == 0, (
        "training ended before the chart was seen moving"
    )
    # Leave for Explore and come back: the same job is still there, still live.
    page.get_by_role("link", name="Explore", exact=True).click()
    expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name="Watch")).to_be_visible(timeout=60_000)
    before = chart_points(page)
    expect(page.get_by_text(FINISHED).first).to_be_visible(timeout=180_000)
    # The light chart gives way to the finished job's Plotly chart, drawn a moment after the
    # status (0 points in between): it must come to show at least what was seen live.
    page.wait_for_function(f"() => ({CHART_POINTS})() >= {before}", polling=200, timeout=60_000)
    assert chart_points(page) >= before
    expect(page.get_by_text("Test accuracy").first).to_be_visible()
    # The finished run is listed in the runs table and linked to Explore and Draw.
    runs = [p.name for p in app_server.runs_dir.iterdir()]
    assert len(runs) == 1
    expect(page.get_by_role("link", name=f"Explore the mistakes of {runs[0]}")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').last).to_contain_text(
        runs[0], timeout=30_000
    )
    assert_no_exception(page)


def test_download_a_runs_model(page, app_server, tmp_path):
    page.goto(app_server.url + "/Train")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
    page.get_by_text("Manage a run: rename, delete, download").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download .keras").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.suffix == ".keras" and path.stat().st_size > 100_000
    assert path.read_bytes()[:2] == b"PK"  # a .keras file is a zip archive
