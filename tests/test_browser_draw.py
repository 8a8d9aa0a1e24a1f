"""Browser end to end: draw a digit with the mouse on the real canvas and read the answer."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import assert_no_exception

pytestmark = pytest.mark.browser


def stroke(p, box, points):
    x0, y0 = box["x"], box["y"]
    p.mouse.move(x0 + points[0][0], y0 + points[0][1])
    p.mouse.down()
    for x, y in points[1:]:
        p.mouse.move(x0 + x, y0 + y, steps=15)
    p.mouse.up()


def test_draw_a_seven_then_clear(page, app_server):
    page.goto(app_server.url + "/Draw?run=default")
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=60_000)
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    # A 7: a bar across the top, then down to the lower left.
    stroke(page, box, [(60, 55), (210, 55), (120, 240)])
    answer = page.get_by_test_id("draw-answer")
    expect(answer).to_have_text("7", timeout=30_000)
    expect(page.get_by_text("4. centred by mass, 28×28")).to_be_visible()
    assert_no_exception(page)
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=30_000)
    # A 1: one vertical stroke.
    box = page.locator("canvas.upper-canvas").bounding_box()
    stroke(page, box, [(140, 40), (135, 245)])
    expect(page.get_by_test_id("draw-answer")).to_have_text("1", timeout=30_000)
    assert_no_exception(page)


def test_draw_with_a_finger_on_a_touch_screen(browser, app_server):
    context = browser.new_context(
        viewport={"width": 800, "height": 1200},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    try:
        p = context.new_page()
        p.goto(app_server.url + "/Draw?run=default")
        expect(p.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=60_000)
        canvas = p.locator("canvas.upper-canvas")
        canvas.wait_for(timeout=60_000)
        box = canvas.bounding_box()
        cdp = context.new_cdp_session(p)

        def touch(kind: str, x: float = 0, y: float = 0) -> None:
            points = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        # A finger draws a 1: touch down, slide down the canvas, lift.
        touch("touchStart", 140, 40)
        for i in range(1, 21):
            touch("touchMove", 140 - i * 0.2, 40 + i * 10)
        touch("touchEnd")
        expect(p.get_by_test_id("draw-answer")).to_have_text("1", timeout=30_000)
        assert_no_exception(p)
    finally:
        context.close()


def test_upload_a_photo_of_a_digit_or_a_bad_file(page, app_server, mnist, tmp_path):
    import numpy as np
    from PIL import Image

    # A real test digit (a 2), dark ink on light paper, at a size no canvas has.
    digit = 255 - np.asarray(Image.fromarray(mnist.x_test[1]).resize((300, 300)))
    photo = tmp_path / "two.png"
    Image.fromarray(digit).save(photo)
    garbage = tmp_path / "not-a-picture.png"
    garbage.write_bytes(b"this is text pretending to be a PNG")
    page.goto(app_server.url + "/Draw?run=default")
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=60_000)
    page.get_by_text("Upload", exact=True).click()
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files(str(photo))
    expect(page.get_by_test_id("draw-answer")).to_have_text(str(mnist.y_test[1]), timeout=30_000)
    uploader.set_input_files(str(garbage))
    expect(page.get_by_text(re.compile("not an image"))).to_be_visible(timeout=30_000)
    assert_no_exception(page)
