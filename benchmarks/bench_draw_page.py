"""Draw page: the per-stroke work in process, and mouse-up to answer in a real browser.

    python benchmarks/bench_draw_page.py [--run default] [--strokes 10] [--repeats 200]

First times core.draw_session.read, everything the page computes for a finished stroke
(preprocessing, one compiled prediction, the calibrated verdict), on a 7 drawn on a 280x280 RGBA
canvas. Then starts `streamlit run app.py` on a free port (the runs folder is ./runs, so the shipped default
model is there), opens the Draw page in headless Chromium, and draws alternately a 7 and a 1 with
the mouse on the real canvas, clearing in between. For each drawing it records, inside the page,
the moment of the mouse-up and the first animation frame in which the big answer shows the expected
digit; prints the median and the worst of those delays. The first drawing, which warms the model's
compiled functions up, is reported on its own line.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RECORD_LIFT = """
document.addEventListener("pointerup", () => { window.__lifted = performance.now(); }, true);
"""
# Strokes in canvas pixels, and the digit the default model reads in each.
SEVEN = [(60, 55), (210, 55), (120, 240)]
ONE = [(140, 40), (135, 245)]


@contextmanager
def streamlit_server(runs_dir: Path, examples_dir: Path):
    """A Streamlit server for the app on a free port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        DIGITLAB_RUNS_DIR=str(runs_dir),
        DIGITLAB_EXAMPLES_DIR=str(examples_dir),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.setdefault("MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Streamlit did not start")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def stroke(page, box: dict, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through points (canvas pixels)."""
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=15)
    page.mouse.up()


def canvas_box(page, clears: int) -> dict:
    """The bounding box of the canvas after `clears` Clears (each mounts a new one, by key)."""
    canvas = page.locator(f".st-key-draw_canvas_{clears} canvas.upper-canvas")
    deadline = time.monotonic() + 60
    while (box := canvas.bounding_box()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the canvas never appeared")
        page.wait_for_timeout(50)
    return box


def seconds_to_answer(page, digit: str) -> float:
    """Seconds from the last mouse-up to the first frame showing `digit` as the answer."""
    ms = page.wait_for_function(
        """digit => {
            const el = document.querySelector("[data-testid='draw-answer']");
            return el && el.textContent.trim() === digit && performance.now() - window.__lifted;
        }""",
        arg=digit,
        polling="raf",
        timeout=60_000,
    ).json_value()
    return ms / 1000


def measure(url: str, run: str, strokes: int) -> list[float]:
    """Mouse-up-to-answer delays of `strokes` drawings, the first (cold) one included."""
    from playwright.sync_api import expect, sync_playwright

    delays = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(RECORD_LIFT)
        page.goto(f"{url}/Draw?run={run}")
        invitation = page.get_by_text("Draw a digit on the black square")
        expect(invitation).to_be_visible(timeout=120_000)
        for i in range(strokes):
            box = canvas_box(page, clears=i)
            points, digit = (SEVEN, "7") if i % 2 == 0 else (ONE, "1")
            stroke(page, box, points)
            delays.append(seconds_to_answer(page, digit))
            page.get_by_role("button", name="Clear", exact=True).click()
            expect(invitation).to_be_visible(timeout=60_000)
        browser.close()
    return delays


def in_process(run: str, runs_dir: Path, repeats: int) -> list[float]:
    """Seconds per draw_session.read of a drawn 7, after a warm-up."""
    from PIL import Image, ImageDraw

    from core import draw_session, explain
    from core.data import load_mnist
    from core.runs import RunStore

    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line(SEVEN, fill=(255, 255, 255, 255), width=18, joint="curve")
    canvas = np.asarray(img)
    model = RunStore(runs_dir).load_model(run)
    data = load_mnist(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    calibration = explain.calibrate(model, data.x_train[-6000:], data.y_train[-6000:])
    predictor = explain.Predictor(model)
    for _ in range(20):
        draw_session.read(canvas, predictor, calibration)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw_session.read(canvas, predictor, calibration)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="default", help="the run to ask (default: shipped model)")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs"))
    parser.add_argument("--strokes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    reads = in_process(args.run, Path(args.runs_dir), args.repeats)
    print(f"Draw page, run {args.run}: one finished stroke in process (draw_session.read)")
    print(
        f"  median {statistics.median(reads) * 1000:6.2f} ms, "
        f"p95 {np.percentile(reads, 95) * 1000:6.2f} ms over {args.repeats} calls"
    )
    with (
        tempfile.TemporaryDirectory() as examples,
        streamlit_server(Path(args.runs_dir), Path(examples)) as url,
    ):
        delays = measure(url, args.run, args.strokes + 1)
    cold, warm = delays[0], delays[1:]
    print(f"Draw page, run {args.run}: mouse-up to answer in the browser")
    print(f"  first drawing (cold)  {cold * 1000:6.0f} ms")
    print(
        f"  next {len(warm)} drawings     median {statistics.median(warm) * 1000:6.0f} ms, "
        f"worst {max(warm) * 1000:6.0f} ms"
    )


if __name__ == "__main__":
    main()
