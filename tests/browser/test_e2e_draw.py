"""Browser end to end: draw digits with the mouse (and a finger) on the real canvas, upload files.

Uses the shipped default model (models/default), the one a visitor meets on a fresh deployment.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.support import ROOT, assert_no_exception

pytestmark = pytest.mark.browser
INVITATION = "Draw a digit on the black square"
WAIT = 60_000
"""Milliseconds any wait may take: sized for a busy 2-core machine (the answer's speed is measured
by benchmarks/bench_draw_page.py, which also retakes the README's Draw screenshots)."""


@pytest.fixture(autouse=True)
def default_model():
    if not (ROOT / "models" / "default" / "model.keras").exists():
        pytest.fail("models/default/model.keras is missing: the Draw page tests need it")


def canvas_box(p, clears: int = 0) -> dict:
    """The bounding box of the canvas after `clears` Clears, once mounted (each Clear mounts a new
    canvas under a new key; the old one lingers until the rerun ends)."""
    canvas = p.locator(f".st-key-draw_canvas_{clears} canvas.upper-canvas")
    deadline = time.monotonic() + WAIT / 1000
    while True:
        expect(canvas).to_be_visible(timeout=WAIT)
        box = canvas.bounding_box()
        if box is not None:
            return box
        assert time.monotonic() < deadline, "the canvas never settled"
        p.wait_for_timeout(50)


def open_draw(p, app_server) -> dict:
    """Open Draw on the default model; the canvas's bounding box."""
    p.set_default_timeout(WAIT)
    p.goto(app_server.url + "/Draw?run=default")
    expect(p.get_by_text(INVITATION)).to_be_visible(timeout=WAIT)
    return canvas_box(p)


def stroke(p, box: dict, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through points (canvas pixels), pressed from the first to the last."""
    p.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    p.mouse.down()
    for x, y in points[1:]:
        p.mouse.move(box["x"] + x, box["y"] + y, steps=15)
    p.mouse.up()


def expect_answer(p, digit: str) -> None:
    """Wait until the big answer reads `digit`."""
    expect(p.get_by_test_id("draw-answer")).to_have_text(digit, timeout=WAIT)


def test_draw_a_seven_see_why_clear_then_a_one(page, app_server):
    box = open_draw(page, app_server)
    # A 7: a bar across the top, then down to the lower left.
    stroke(page, box, [(60, 55), (210, 55), (120, 240)])
    expect_answer(page, "7")
    expect(page.get_by_text("4. centred by mass in 28×28")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Top three:")).to_be_visible(timeout=WAIT)
    assert_no_exception(page)
    # Why not a 1? A map over the input for the class the visitor picks.
    page.get_by_role("radio", name="Saliency").click()
    page.get_by_role("combobox", name="For the digit").click()
    page.get_by_role("option", name="why not a 1?").click()
    expect(page.get_by_text("The model gives 1 a probability of")).to_be_visible(timeout=WAIT)
    assert_no_exception(page)
    # The way through the network: the probabilities, two filter grids, the dense layer and the
    # softmax; a pager reaches the last filters (the default model's second layer has 64).
    page.get_by_role("radio", name="Activations").click()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(5, timeout=WAIT)
    expect(page.get_by_role("combobox", name="For the digit")).to_be_disabled(timeout=WAIT)
    page.get_by_role("radio", name="49–64").click()
    expect(page.get_by_text("filter 64", exact=True)).to_be_visible(timeout=WAIT)
    assert_no_exception(page)
    # Clear, then a 1: one vertical stroke.
    page.get_by_role("button", name="Clear", exact=True).click()
    expect(page.get_by_text(INVITATION)).to_be_visible(timeout=WAIT)
    stroke(page, canvas_box(page, clears=1), [(140, 40), (135, 245)])
    expect_answer(page, "1")
    assert_no_exception(page)


def test_draw_with_a_finger_on_a_touch_screen(browser, app_server):
    context = browser.new_context(
        viewport={"width": 420, "height": 900},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    try:
        p = context.new_page()
        box = open_draw(p, app_server)
        cdp = context.new_cdp_session(p)

        def touch(kind: str, x: float = 0, y: float = 0) -> None:
            points = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        # A finger draws a 7: across the top, then down to the lower left, and lifts.
        touch("touchStart", 60, 50)
        for i in range(1, 16):
            touch("touchMove", 60 + i * 10, 50)
        for i in range(1, 21):
            touch("touchMove", 210 - i * 4.5, 50 + i * 9.5)
        touch("touchEnd")
        expect_answer(p, "7")
        assert_no_exception(p)
    finally:
        context.close()


def test_a_scribble_is_flagged_not_read_as_a_digit(page, app_server):
    box = open_draw(page, app_server)
    # Zigzags over the whole square: nothing like a digit.
    stroke(page, box, [(30, 40), (250, 60), (40, 110), (240, 150), (30, 200), (250, 240)])
    expect(page.get_by_text("best guess, not sure")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stAlertContentWarning")).to_be_visible(timeout=WAIT)
    assert_no_exception(page)


def test_upload_a_photo_of_a_digit_or_a_bad_file(page, app_server, mnist, tmp_path: Path):
    # A real test digit (a 2), dark ink on light paper, at a size no canvas has.
    digit = 255 - np.asarray(Image.fromarray(mnist.x_test[1]).resize((300, 300)))
    photo = tmp_path / "two.png"
    Image.fromarray(digit).save(photo)
    garbage = tmp_path / "not-a-picture.png"
    garbage.write_bytes(b"this is text pretending to be a PNG")
    open_draw(page, app_server)
    page.get_by_role("radio", name="Upload").click()
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files(str(photo))
    expect_answer(page, str(mnist.y_test[1]))
    assert_no_exception(page)
    uploader.set_input_files(str(garbage))
    expect(page.get_by_text("not an image Digit Lab can read")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("draw-answer")).to_have_count(0, timeout=WAIT)
    assert_no_exception(page)
