"""The Train page in a real browser: time to the first chart point, chart refresh, throughput.

    python benchmarks/bench_train_page.py --data-dir ../shared/data/mnist [--samples 30000]
        [--epochs 2] [--screenshots docs/screenshots]

Starts `streamlit run app.py` on a free port with an empty runs folder, opens the Train page in
headless Chromium with the `fast` preset on the chosen samples and epochs, presses Train and
prints:
- seconds from the click to the first point on the loss chart;
- the interval between chart updates seen in the browser (median, and how many);
- training images/second of the run the page saved, against `python -m core train` with the same
  settings (the ratio; 1.0 means the open page costs nothing).
With --screenshots, saves train-idle.png, train-running.png and train-finished.png there.
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

from tests.browser.server import launch_chromium, start_app  # noqa: E402

# Points on the first Plotly chart (the loss): it grows with every refresh that brings new batches.
POINTS = """() => {
  const plots = document.querySelectorAll('.stPlotlyChart .js-plotly-plot');
  if (!plots.length || !plots[0].calcdata || !plots[0].calcdata.length) return 0;
  return plots[0].calcdata[0].length || 0;
}"""


def images_per_second(run_dir: Path) -> float:
    """Training throughput of a saved run, from its meta.json."""
    meta = json.loads((run_dir / "meta.json").read_text())
    return meta["train_samples"] * meta["epochs_completed"] / meta["train_seconds"]


def watch_training(url: str, setup: str, shots: Path | None) -> tuple[float, list[float]]:
    """Press Train; return seconds to the first chart point and the times of every chart change."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url + setup)
        page.get_by_role("heading", name="Train a network").wait_for()
        page.get_by_text(re.compile(r"^[\d,]+ parameters$")).first.wait_for()  # the summary
        page.get_by_role("spinbutton", name="Epochs").wait_for()  # widgets drawn, not skeletons
        if shots:
            page.wait_for_timeout(1000)
            page.screenshot(path=shots / "train-idle.png")
        page.get_by_role("button", name="Train", exact=True).click()
        clicked = time.perf_counter()
        page.mouse.move(5, 5)  # off the charts, so no Plotly toolbar covers their titles
        changes: list[float] = []
        last = 0
        running_shot = False
        while not page.get_by_text("Finished — Test accuracy").count():
            n = page.evaluate(POINTS)
            if n != last and n > 0:
                changes.append(time.perf_counter())
                last = n
            if shots and len(changes) == 3 and not running_shot:
                running_shot = True
                page.get_by_role("heading", name="Watch").evaluate("e => e.scrollIntoView()")
                page.screenshot(path=shots / "train-running.png")
            page.wait_for_timeout(50)
        if shots:
            page.get_by_text("Explore the mistakes of").first.wait_for()
            page.get_by_role("heading", name="Watch").evaluate("e => e.scrollIntoView()")
            page.wait_for_timeout(800)
            page.screenshot(path=shots / "train-finished.png")
        browser.close()
    if not changes:
        raise RuntimeError("the loss chart never showed a point")
    return changes[0] - clicked, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST files")
    parser.add_argument("--samples", type=int, default=30000, help="training samples")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--screenshots", help="folder to save the Train screenshots in")
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-page-"))
    runs = tmp / "runs"
    runs.mkdir()
    setup = f"/Train?preset=fast&train_samples={args.samples}&epochs={args.epochs}"

    server = start_app(
        {
            "MNIST_DIR": data_dir,
            "DIGITLAB_RUNS_DIR": str(runs),
            "DIGITLAB_EXAMPLES_DIR": str(runs.parent / "examples"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    try:
        first_point, changes = watch_training(server.url, setup, shots)
    finally:
        server.stop(timeout=30)
    page_rate = images_per_second(next(runs.iterdir()))

    cli_runs = tmp / "cli-runs"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--preset",
            "fast",
            "--train-samples",
            str(args.samples),
            "--epochs",
            str(args.epochs),
            "--data-dir",
            data_dir,
            "--runs-dir",
            str(cli_runs),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    cli_rate = images_per_second(next(cli_runs.iterdir()))

    intervals = [b - a for a, b in zip(changes, changes[1:], strict=False)]
    print(f"fast preset, {args.samples:,} samples x {args.epochs} epochs")
    print(f"press Train -> first chart point: {first_point:.2f} s")
    if intervals:
        print(
            f"chart refresh seen in the browser: median {statistics.median(intervals):.2f} s "
            f"(min {min(intervals):.2f}, max {max(intervals):.2f}, {len(intervals)} intervals)"
        )
    print(
        f"throughput: page open {page_rate:,.0f} img/s, command line {cli_rate:,.0f} img/s, "
        f"ratio {page_rate / cli_rate:.2f}"
    )


if __name__ == "__main__":
    main()
