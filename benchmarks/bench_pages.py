"""The pages in a real browser: Train's latency and refresh, its throughput, Draw's answer time.

    python benchmarks/bench_pages.py --data-dir ../shared/data/mnist [--screenshots docs/screenshots]

Starts `streamlit run app.py` on a free port with an empty runs folder, drives Debian's Chromium
with Playwright, and prints:
- seconds from pressing Train to the first point on the loss chart;
- the interval between chart updates seen in the browser (median);
- training images/second with the page open against `python -m core train`, same settings;
- seconds from lifting the mouse to the answer on the Draw page (median of several strokes).
With --screenshots, saves the README's screenshots of every page there (Explore's with the shipped
default model: dataset, map, preprocessing, augmentation, errors).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.server import CHART_POINTS, launch_chromium, start_app  # noqa: E402

SAMPLES, EPOCHS = 20000, 2
SETUP = f"/Train?preset=fast&train_samples={SAMPLES}&epochs={EPOCHS}"


EXPLORE_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXPLORE_IMAGES = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
  .every(img => img.complete && img.naturalWidth > 0)"""
EXPLORE_CELL = """([t, p]) => {
  const gd = document.querySelector('.st-key-explore_cm .js-plotly-plot');
  const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: box.left + xa._offset + xa.d2p(p), y: box.top + ya._offset + ya.d2p(t)};
}"""
EXPLORE_POINT = """() => {
  const gd = document.querySelector('.st-key-explore_map_pixels .js-plotly-plot');
  const t = gd._fullData[0], box = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, i = Math.floor(t.x.length / 2);
  return {x: box.left + xa._offset + xa.d2p(t.x[i]), y: box.top + ya._offset + ya.d2p(t.y[i])};
}"""


def explore_scroll(page, heading: str) -> None:
    """Bring a heading to the top of Streamlit's scrolling main area."""
    target = page.get_by_text(heading, exact=True)
    target.scroll_into_view_if_needed()
    page.evaluate(
        "(y) => document.querySelector('[data-testid=\"stMain\"]').scrollBy(0, y)",
        target.bounding_box()["y"] - 60,
    )


def explore_shot(page, path: Path, heading: str | None = None) -> None:
    """A screenshot of Explore once its run has ended, scrolled to `heading`, without a tooltip."""
    page.locator(EXPLORE_IDLE).wait_for()
    if heading is not None:
        explore_scroll(page, heading)
    page.wait_for_function(EXPLORE_IMAGES)
    page.mouse.move(700, 8)
    page.screenshot(path=path)


def explore_click(page, chart: str, point: dict) -> None:
    """Hover a Plotly point until its tooltip shows, then click it."""
    page.mouse.move(point["x"], point["y"])
    page.locator(f"{chart} .hoverlayer .hovertext").first.wait_for()
    page.mouse.click(point["x"], point["y"])


def explore_screenshots(browser, url: str, shots: Path) -> None:
    """The README's Explore screenshots, each view in the state a visitor would first look at."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url + "/Explore?run=default")
    page.get_by_text("#0 · 5", exact=True).wait_for()
    explore_shot(page, shots / "explore-dataset.png")
    explore_scroll(page, "A map of the digits")
    page.get_by_text("Beside it: what the model learned").click()
    page.locator(".st-key-explore_map_features .js-plotly-plot").wait_for()
    page.locator(EXPLORE_IDLE).wait_for()
    explore_click(page, ".st-key-explore_map_pixels", page.evaluate(EXPLORE_POINT))
    page.get_by_text(re.compile(r"^Selected on the map: ")).wait_for()
    explore_shot(page, shots / "explore-map.png")

    page.get_by_role("radio", name="Preprocessing").click()
    page.get_by_text("Show 12 random augmentations of this digit").click()
    page.get_by_text("draw 12", exact=True).wait_for()
    explore_shot(
        page, shots / "explore-preprocessing.png", "The tutorial's preprocessing, on one digit"
    )
    explore_shot(page, shots / "explore-augmentation.png", "What augmentation does")

    page.get_by_role("radio", name="Errors").click()
    page.locator(".st-key-explore_cm .js-plotly-plot").wait_for()
    page.locator(EXPLORE_IDLE).wait_for()
    # The second most frequent confusion, as the old browser test showed it.
    counts = page.evaluate(
        "() => document.querySelector('.st-key-explore_cm .js-plotly-plot')._fullData[0].z"
    )
    off = [(n, t, p) for t, row in enumerate(counts) for p, n in enumerate(row) if t != p]
    _, true, pred = sorted(off, key=lambda c: (-c[0], c[1], c[2]))[1]
    explore_scroll(page, "Confusion matrix")
    explore_click(page, ".st-key-explore_cm", page.evaluate(EXPLORE_CELL, [true, pred]))
    page.get_by_text(re.compile(rf"^True {true}, predicted {pred}: ")).wait_for()
    explore_shot(page, shots / "explore-errors.png")
    page.close()


def images_per_second(run_dir: Path) -> float:
    meta = json.loads((run_dir / "meta.json").read_text())
    return meta["train_samples"] * meta["epochs_completed"] / meta["train_seconds"]


def stroke(page, points) -> None:
    box = page.locator("canvas.upper-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=15)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--screenshots", help="folder to save the README's screenshots in")
    args = parser.parse_args()
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    runs = tmp / "runs"
    runs.mkdir()
    server = start_app(
        {
            "MNIST_DIR": args.data_dir,
            "DIGITLAB_RUNS_DIR": str(runs),
            "DIGITLAB_EXAMPLES_DIR": str(runs.parent / "examples"),
        }
    )
    url = server.url
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.locator("h1", has_text="Digit Lab").wait_for()
            if shots:
                page.wait_for_timeout(1500)
                page.screenshot(path=shots / "home.png")
            page.goto(url + SETUP)
            page.get_by_role("heading", name="Train a network").wait_for()
            page.wait_for_timeout(1500)
            if shots:
                page.screenshot(path=shots / "train-idle.png")
            page.get_by_role("button", name="Train", exact=True).click()
            clicked = time.perf_counter()
            changes, last = [], 0
            while True:
                n = page.evaluate(CHART_POINTS)
                now = time.perf_counter()
                if n != last and n > 0:
                    changes.append(now)
                    last = n
                if page.get_by_text("Finished — Test accuracy").count():
                    break
                if shots and len(changes) == 3 and not (shots / ".running").exists():
                    (shots / ".running").touch()
                    page.get_by_role("heading", name="Watch").evaluate("e => e.scrollIntoView()")
                    page.screenshot(path=shots / "train-running.png")
                page.wait_for_timeout(50)
            if shots:
                (shots / ".running").unlink(missing_ok=True)
            first_point = changes[0] - clicked
            intervals = [b - a for a, b in zip(changes, changes[1:], strict=False)]
            if shots:
                page.wait_for_timeout(1500)
                page.get_by_role("heading", name="Watch").evaluate("e => e.scrollIntoView()")
                page.wait_for_timeout(500)
                page.screenshot(path=shots / "train-finished.png")
            page_rate = images_per_second(next(runs.iterdir()))

            page.goto(url + "/Draw?run=default")
            page.get_by_text("Draw a digit on the black square").wait_for()
            answer_times = []
            for i in range(6):
                if i:
                    page.get_by_role("button", name="Clear").click()
                    page.get_by_text("Draw a digit on the black square").wait_for()
                strokes = (
                    [(60, 55), (210, 55), (120, 240)] if i % 2 == 0 else [(140, 40), (135, 245)]
                )
                stroke(page, strokes)
                page.mouse.up()
                up = time.perf_counter()
                page.get_by_test_id("draw-answer").wait_for()
                answer_times.append(time.perf_counter() - up)
            if shots:
                page.wait_for_timeout(1500)
                page.screenshot(path=shots / "draw.png", full_page=True)
                explore_screenshots(browser, url, shots)
            browser.close()
    finally:
        server.stop()
    cli_runs = tmp / "cli-runs"
    subprocess.run(
        [sys.executable, "-m", "core", "train", "--preset", "fast", "--train-samples", str(SAMPLES),
         "--epochs", str(EPOCHS), "--data-dir", args.data_dir, "--runs-dir", str(cli_runs)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    cli_rate = images_per_second(next(cli_runs.iterdir()))
    print(f"Train: press Train -> first chart point: {first_point:.2f} s")
    print(
        f"Train: chart refresh interval in the browser: median {statistics.median(intervals):.2f} s "
        f"({len(intervals)} updates)"
    )
    print(
        f"Train: fast preset, {SAMPLES} samples x {EPOCHS} epochs: page {page_rate:.0f} img/s, "
        f"command line {cli_rate:.0f} img/s, ratio {page_rate / cli_rate:.3f}"
    )
    print(
        f"Draw: mouse up -> answer: median {statistics.median(answer_times):.2f} s, "
        f"max {max(answer_times):.2f} s over {len(answer_times)} strokes (first includes model load)"
    )


if __name__ == "__main__":
    main()
