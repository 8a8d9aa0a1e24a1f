"""Draw page: the per-stroke work in process, and mouse-up to answer in a real browser.

    python benchmarks/bench_draw_page.py [--run default] [--strokes 10] [--repeats 200]
                                         [--screenshots docs/screenshots]

First times core.draw_session.read, everything the page computes for a finished stroke
(preprocessing, one compiled prediction, the calibrated verdict), on a 7 drawn on a 280x280 RGBA
canvas. Then starts `streamlit run app.py` on a free port (the runs folder is ./runs, so the shipped default
model is there), opens the Draw page in headless Chromium, and draws alternately a 7 and a 1 with
the mouse on the real canvas, clearing in between. For each drawing it records, inside the page,
the moment of the mouse-up and the first animation frame in which the big answer shows the expected
digit; prints the median and the worst of those delays. The first drawing, which warms the model's
compiled functions up, is reported on its own line. With --screenshots DIR, then saves the Draw
page's screenshots there (draw-empty, -answer, -why, -unsure, -upload.png), as in the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from tests.browser.server import launch_chromium, start_app  # noqa: E402

RECORD_LIFT = """
document.addEventListener("pointerup", () => { window.__lifted = performance.now(); }, true);
"""
# Strokes in canvas pixels, and the digit the default model reads in each.
SEVEN = [(60, 55), (210, 55), (120, 240)]
ONE = [(140, 40), (135, 245)]
SCRIBBLE = [(30, 40), (250, 60), (40, 110), (240, 150), (30, 200), (250, 240)]
INVITATION = "Draw a digit on the black square"
WAIT = 60_000


@contextmanager
def streamlit_server(runs_dir: Path, examples_dir: Path):
    """A Streamlit server for the app on a free port; yields its URL."""
    server = start_app(
        {
            "DIGITLAB_RUNS_DIR": str(runs_dir),
            "DIGITLAB_EXAMPLES_DIR": str(examples_dir),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "MNIST_DIR": os.environ.get(
                "MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist")
            ),
        }
    )
    try:
        yield server.url
    finally:
        server.stop()


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
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(RECORD_LIFT)
        page.goto(f"{url}/Draw?run={run}")
        invitation = page.get_by_text(INVITATION)
        expect(invitation).to_be_visible(timeout=120_000)
        for i in range(strokes):
            box = canvas_box(page, clears=i)
            points, digit = (SEVEN, "7") if i % 2 == 0 else (ONE, "1")
            stroke(page, box, points)
            delays.append(seconds_to_answer(page, digit))
            page.get_by_role("button", name="Clear", exact=True).click()
            expect(invitation).to_be_visible(timeout=WAIT)
        browser.close()
    return delays


def screenshots(url: str, run: str, folder: Path, upload: np.ndarray) -> list[Path]:
    """The Draw page's screenshots: empty, a 7 and why not a 1, a scribble, an uploaded photo."""
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = launch_chromium(pw)
        shoot_a_seven(open_draw(browser, url, run), folder)
        page = open_draw(browser, url, run)
        stroke(page, canvas_box(page, clears=0), SCRIBBLE)
        expect_text(page, "best guess, not sure")
        shot(page, folder / "draw-unsure.png")
        photo = Path(tmp) / "two.png"
        Image.fromarray(upload).save(photo)
        page = open_draw(browser, url, run)
        page.get_by_role("radio", name="Upload").click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
        expect(page.get_by_test_id("draw-answer")).to_be_visible(timeout=WAIT)
        shot(page, folder / "draw-upload.png")
        browser.close()
    return sorted(folder.glob("draw-*.png"))


def shoot_a_seven(page, folder: Path) -> None:
    """Empty, then a 7 and its answer, then why it is not a 1 (Saliency)."""
    shot(page, folder / "draw-empty.png", charts=0)
    stroke(page, canvas_box(page, clears=0), SEVEN)
    seconds_to_answer(page, "7")
    shot(page, folder / "draw-answer.png")
    page.get_by_role("radio", name="Saliency").click()
    page.get_by_role("combobox", name="For the digit").click()
    page.get_by_role("option", name="why not a 1?").click()
    expect_text(page, "The model gives 1 a probability of")
    page.get_by_role("heading", name="Why").scroll_into_view_if_needed()
    shot(page, folder / "draw-why.png", charts=2)


def open_draw(browser, url: str, run: str):
    """A new 1400x1000 tab on the Draw page, once it invites to draw."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT)
    page.add_init_script(RECORD_LIFT)
    page.goto(f"{url}/Draw?run={run}")
    expect_text(page, INVITATION, timeout=120_000)
    return page


def expect_text(page, text: str, timeout: int = WAIT) -> None:
    """Wait until `text` shows on the page."""
    from playwright.sync_api import expect

    expect(page.get_by_text(text).first).to_be_visible(timeout=timeout)


def shot(page, path: Path, charts: int = 1) -> None:
    """A screenshot once the page's first `charts` Plotly charts are drawn."""
    from playwright.sync_api import expect

    if charts:
        drawn = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")
        expect(drawn.nth(charts - 1)).to_be_visible(timeout=WAIT)
    page.screenshot(path=str(path))


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
    parser.add_argument("--screenshots", help="folder to save the Draw page's screenshots in")
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
        shots = (
            screenshots(url, args.run, Path(args.screenshots), photo()) if args.screenshots else []
        )
    cold, warm = delays[0], delays[1:]
    print(f"Draw page, run {args.run}: mouse-up to answer in the browser")
    print(f"  first drawing (cold)  {cold * 1000:6.0f} ms")
    print(
        f"  next {len(warm)} drawings     median {statistics.median(warm) * 1000:6.0f} ms, "
        f"worst {max(warm) * 1000:6.0f} ms"
    )
    for path in shots:
        print(f"screenshot: {path}")


def photo() -> np.ndarray:
    """A real test digit (a 2), dark ink on light paper, at a size no canvas has."""
    from PIL import Image

    from core.data import load_mnist

    data = load_mnist(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    return 255 - np.asarray(Image.fromarray(data.x_test[1]).resize((300, 300)))


if __name__ == "__main__":
    main()
