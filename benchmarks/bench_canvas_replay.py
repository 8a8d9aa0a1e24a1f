"""Canvas replay: does the real canvas in Chromium give the page the input the offline path gives?

    python benchmarks/bench_canvas_replay.py [--count 120] [--touch 60] [--url http://...]

Replays hand-style digits (benchmarks/handwriting.canvas_replays: every style of every digit,
five brush widths, a third of them in the top right corner where the canvas's toolbar sits,
two-stroke 4s, 5s and 7s among them) on the Draw page, with the mouse in a 1400x1000 window and
with a finger in an 800x1200 touch screen at device scale factor 2 with the sidebar open. For each
drawing it reads the 28x28 input the page used (the answer's `data-input`) and compares it with
the offline path: the same pointer positions drawn in Python as the canvas draws them
(handwriting.render_canvas), then core.drawing.prepare. Prints how often the two inputs match
(INPUT_TOLERANCE), how often the answers agree, the answers' accuracy either way, and mouse-up to
answer. Without --url it starts `streamlit run app.py` itself (shipped default model).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from benchmarks.bench_draw_page import streamlit_server  # noqa: E402
from benchmarks.handwriting import Replay, canvas_replays, pointer_path, render_canvas  # noqa: E402
from tests.browser.server import launch_chromium  # noqa: E402

STEPS = 3
"""Pointer moves per leg between two waypoints of a stroke."""
INPUT_TOLERANCE = 0.02
"""Two 28x28 inputs in [0, 1] match when their mean absolute difference is at most this, after
the better of the nine whole-pixel shifts by at most one pixel. Why: the canvas antialiases its
brush a little differently from the offline renderer, which moves the centre of mass by a small
fraction of a pixel; when that crosses a half pixel, the centring rounds to a neighbouring whole
pixel and the whole digit moves by one. A lost stroke, a clipped canvas or another brush width
differ by 0.05 to 0.3."""
INVITATION = "Draw a digit on the black square"
WAIT = 60_000
RECORD_LIFT = """
document.addEventListener("pointerup", () => { window.__lifted = performance.now(); }, true);
"""
# Resolves with ms since the last pointer-up once the answer's input is close to `code`.
ANSWER_MATCHES = """([code, tolerance]) => {
    const el = document.querySelector("[data-testid='draw-answer']");
    const got = el && el.getAttribute("data-input");
    if (!got || got.length !== code.length) return false;
    let total = 0;
    for (let i = 0; i < code.length; i += 2) {
        total += Math.abs(parseInt(got.substr(i, 2), 16) - parseInt(code.substr(i, 2), 16));
    }
    return total / (code.length / 2) / 255 <= tolerance && performance.now() - window.__lifted;
}"""
MOUSE = {"viewport": {"width": 1400, "height": 1000}}
TOUCH = {
    "viewport": {"width": 800, "height": 1200},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 2,
}


@dataclass
class Outcome:
    """What the page made of one replayed drawing."""

    replay: Replay
    page_input: np.ndarray | None
    """The 28x28 input the page answered for, or None when it answered nothing."""
    page_answer: int | None
    seconds: float | None
    """Pointer-up to the answer for the expected input (None when it never came)."""


def offline_input(replay: Replay) -> np.ndarray:
    """The 28x28 input of the offline path: the replay drawn as the canvas draws, prepared."""
    from core.drawing import prepare

    paths = [pointer_path(s, STEPS) for s in replay.strokes]
    return prepare(render_canvas(paths, replay.brush))


def input_distance(a: np.ndarray | None, b: np.ndarray) -> float:
    """Mean absolute difference of two 28x28 inputs, the best of the shifts by at most a pixel."""
    if a is None:
        return float("inf")
    padded = np.pad(a, 1)
    return min(
        float(np.abs(padded[1 + dy : 29 + dy, 1 + dx : 29 + dx] - b).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def set_brush(page, width: int) -> None:
    """Move the brush slider to `width` with the keyboard and wait for the page to take it."""
    from playwright.sync_api import expect

    slider = page.get_by_role("slider", name="Brush width")
    current = int(slider.input_value())
    if current == width:
        return
    slider.focus()
    key = "ArrowRight" if width > current else "ArrowLeft"
    for _ in range(abs(width - current)):
        page.keyboard.press(key)
    expect(slider).to_have_value(str(width), timeout=WAIT)
    wait_idle(page)


def wait_idle(page) -> None:
    """Wait until the script run has finished."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=WAIT
    )


def canvas_origin(page, clears: int) -> tuple[float, float]:
    """The top left corner of the canvas after `clears` Clears, once it is laid out."""
    canvas = page.locator(f".st-key-draw_canvas_{clears} canvas.upper-canvas")
    deadline = time.monotonic() + WAIT / 1000
    while (box := canvas.bounding_box()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the canvas never appeared")
        page.wait_for_timeout(50)
    return box["x"], box["y"]


def draw(page, origin: tuple[float, float], replay: Replay, touch) -> None:
    """Replay the strokes with the mouse, or with a finger (`touch`, a CDP session)."""
    x0, y0 = origin
    for stroke in replay.strokes:
        if touch is None:
            page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(x0 + x, y0 + y, steps=STEPS)
            page.mouse.up()
            continue
        path = pointer_path(stroke, STEPS)
        for i, (x, y) in enumerate(path):
            kind = "touchStart" if i == 0 else "touchMove"
            point = [{"x": x0 + x, "y": y0 + y}]
            touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": point})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def replay_one(page, clears: int, replay: Replay, expected: np.ndarray, touch, wait_s: float):
    """Draw one replay on a fresh canvas; what the page answered (then Clear)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    from core.draw_session import decode_input, input_code

    draw(page, canvas_origin(page, clears), replay, touch)
    seconds = None
    try:
        ms = page.wait_for_function(
            ANSWER_MATCHES,
            arg=[input_code(expected), 0.05],
            polling="raf",
            timeout=wait_s * 1000,
        ).json_value()
        seconds = ms / 1000
    except PlaywrightTimeout:
        pass
    wait_idle(page)
    error = page.locator('[data-testid="stException"]')
    if error.count():
        raise RuntimeError(
            f"{replay.name}: the page shows an exception: {error.first.inner_text()}"
        )
    answer = page.get_by_test_id("draw-answer")
    page_input = page_answer = None
    if answer.count():
        page_input = decode_input(answer.get_attribute("data-input"))
        page_answer = int(answer.text_content().strip())
    page.get_by_role("button", name="Clear", exact=True).click()
    expect(page.get_by_text(INVITATION)).to_be_visible(timeout=WAIT)
    return Outcome(replay, page_input, page_answer, seconds)


def replay_all(browser, url: str, replays: list[Replay], device: dict, wait_s: float = 8.0):
    """Every replay on the Draw page in one tab of `device`, grouped by brush width."""
    context = browser.new_context(**device)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.add_init_script(RECORD_LIFT)
        page.goto(f"{url}/Draw?run=default")
        from playwright.sync_api import expect

        expect(page.get_by_text(INVITATION)).to_be_visible(timeout=120_000)
        touch = context.new_cdp_session(page) if device.get("has_touch") else None
        outcomes = []
        for brush in sorted({r.brush for r in replays}):
            set_brush(page, brush)
            for replay in (r for r in replays if r.brush == brush):
                expected = offline_input(replay)
                outcomes.append(replay_one(page, len(outcomes), replay, expected, touch, wait_s))
        return outcomes
    finally:
        context.close()


def report(name: str, outcomes: list[Outcome], predictor) -> None:
    """Input matches, answer agreement, accuracy either way, and pointer-up to answer."""
    n = len(outcomes)
    offline = [offline_input(o.replay) for o in outcomes]
    offline_answers = [int(predictor(x).argmax()) for x in offline]
    distance = [input_distance(o.page_input, x) for o, x in zip(outcomes, offline, strict=True)]
    match = [d <= INPUT_TOLERANCE for d in distance]
    agree = [o.page_answer == a for o, a in zip(outcomes, offline_answers, strict=True)]
    right_page = [o.page_answer == o.replay.label for o in outcomes]
    right_off = [a == o.replay.label for o, a in zip(outcomes, offline_answers, strict=True)]
    corner = [o.replay.starts_under_toolbar() for o in outcomes]
    nothing = sum(o.page_input is None for o in outcomes)
    print(f"{name}: {n} drawings ({sum(corner)} starting under the toolbar strip)")
    print(f"  inputs match (mean |diff| <= {INPUT_TOLERANCE}): {np.mean(match):6.1%}")
    print(f"  answers agree with the offline path:         {np.mean(agree):6.1%}")
    print(f"  page answered nothing:                       {nothing}")
    if any(corner):
        c_match = np.mean([m for m, c in zip(match, corner, strict=True) if c])
        print(f"  inputs match, strokes starting in the strip: {c_match:6.1%}")
    print(f"  accuracy: page {np.mean(right_page):6.1%}, offline {np.mean(right_off):6.1%}")
    finite = [d for d in distance if np.isfinite(d)]
    if finite:
        print(
            f"  input distance: median {statistics.median(finite):.4f}, "
            f"90th percentile {np.percentile(finite, 90):.4f}, worst {max(finite):.4f}"
        )
    seconds = [o.seconds for o in outcomes if o.seconds is not None]
    if seconds:
        print(
            f"  pointer-up to answer: median {statistics.median(seconds) * 1000:.0f} ms, "
            f"90th percentile {np.percentile(seconds, 90) * 1000:.0f} ms, "
            f"worst {max(seconds) * 1000:.0f} ms over {len(seconds)}"
        )
    for o, m, d in zip(outcomes, match, distance, strict=True):
        if not m:
            print(f"    mismatch: {o.replay.name}: distance {d:.3f}, page said {o.page_answer}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120, help="drawings with the mouse")
    parser.add_argument("--touch", type=int, default=60, help="drawings with a finger")
    parser.add_argument("--url", help="a running app (default: start one)")
    args = parser.parse_args()
    from core import explain
    from core.runs import RunStore

    predictor = explain.Predictor(RunStore(ROOT / "runs").load_model("default"))
    replays = canvas_replays(max(args.count, args.touch))
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            results = run(args.url, replays, args)
        else:
            with streamlit_server(Path(tmp) / "runs", Path(tmp) / "examples") as url:
                results = run(url, replays, args)
    for name, outcomes in results:
        report(name, outcomes, predictor)


def run(url: str, replays: list[Replay], args) -> list[tuple[str, list[Outcome]]]:
    """The mouse replays, then the touch ones, in one headless Chromium."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        if args.count:
            mouse = replay_all(browser, url, replays[: args.count], MOUSE)
            results.append(("mouse, 1400x1000", mouse))
        if args.touch:
            touch = replay_all(browser, url, replays[: args.touch], TOUCH)
            results.append(("finger, 800x1200 touch screen at 2x, sidebar open", touch))
        browser.close()
    return results


if __name__ == "__main__":
    main()
