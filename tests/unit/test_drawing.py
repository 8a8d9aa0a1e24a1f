"""core.drawing: a drawing or an upload becomes what MNIST would have made of it."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.drawing import (
    MARK_ABOVE,
    MARK_INSIDE,
    MNIST_CENTER,
    ImageError,
    enlarge,
    load_image_bytes,
    naive_resize,
    prepare,
    prepare_stages,
)


def canvas(gray: np.ndarray) -> np.ndarray:
    """An opaque RGBA canvas image, as streamlit-drawable-canvas returns it."""
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def center_of_mass(img: np.ndarray) -> np.ndarray:
    """(row, column) of the centre of mass, counted by hand."""
    rows, cols = np.indices(img.shape)
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


def ink_box(img: np.ndarray, level: float = 0.5) -> tuple[int, int]:
    """Height and width of the pixels brighter than level."""
    rows = np.flatnonzero(img.max(axis=1) > level)
    cols = np.flatnonzero(img.max(axis=0) > level)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def paste(digit: np.ndarray, size: int, top: int, left: int, side: int = 280) -> np.ndarray:
    """A 28x28 digit upscaled to size x size and placed at (top, left) on a black square."""
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))
    out = np.zeros((side, side), np.uint8)
    out[top : top + size, left : left + size] = big
    return out


def best_shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of a and b allowing a one-pixel shift (MNIST rounded its centring too)."""
    return max(
        np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def pen(strokes: list[list[tuple[int, int]]], width: int, side: int = 280) -> np.ndarray:
    """White strokes on an opaque black RGBA canvas, as a mouse draws them."""
    img = Image.new("RGBA", (side, side), (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        draw.line(stroke, fill=(255, 255, 255, 255), width=width, joint="curve")
    return np.asarray(img)


SEVEN = [[(60, 55), (210, 55), (120, 240)]]


@pytest.fixture(scope="module")
def mnist_center(mnist) -> np.ndarray:
    """Where real MNIST test digits have their centre of mass, on average."""
    return np.mean([center_of_mass(x.astype(np.float64)) for x in mnist.x_test[:2000]], axis=0)


def test_mnist_center_constant_is_where_real_digits_have_their_mass(mnist_center):
    assert np.allclose(mnist_center, MNIST_CENTER, atol=0.1)


def test_off_centre_drawing_is_recentred_by_mass(mnist_center):
    gray = np.zeros((300, 300), np.uint8)
    gray[20:120, 200:230] = 255  # an L-shape in the top-right corner
    gray[20:40, 170:230] = 255
    out = prepare(canvas(gray))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    assert np.abs(center_of_mass(out) - mnist_center).max() < 0.5


def test_aspect_ratio_is_kept_and_the_longer_side_is_20():
    gray = np.zeros((280, 280), np.uint8)
    gray[40:240, 100:200] = 255  # 200 tall, 100 wide
    stages = prepare_stages(canvas(gray))
    assert stages.scaled.shape == (20, 10)
    height, width = ink_box(stages.centered)
    assert height == 20 and width == pytest.approx(10, abs=1)
    wide = prepare(canvas(np.ascontiguousarray(gray.T)))  # 100 tall, 200 wide
    assert ink_box(wide) == pytest.approx((10, 20), abs=1)


def test_empty_inputs_give_none():
    assert prepare(canvas(np.zeros((280, 280), np.uint8))) is None  # empty canvas, alpha 255
    assert prepare(np.zeros((280, 280, 4), np.uint8)) is None  # fully transparent
    assert prepare(np.full((50, 50), 255, np.uint8)) is None  # blank white paper
    noisy = np.random.default_rng(0).integers(120, 126, (64, 64), dtype=np.uint8)
    assert prepare(noisy) is None  # grey paper with a little sensor noise
    speck = np.zeros((280, 280), np.uint8)
    speck[100, 100] = 255
    assert prepare(canvas(speck)) is None


def test_dark_on_light_equals_light_on_dark(mnist):
    gray = paste(mnist.x_test[0], 180, 50, 30)
    light_on_dark = prepare(canvas(gray))
    dark_on_light = prepare(canvas(255 - gray))
    assert np.allclose(light_on_dark, dark_on_light, atol=1e-5)
    # A coloured pen on coloured paper is found by colour too.
    paper, ink = np.array([250, 240, 200]), np.array([20, 40, 160])
    share = gray[..., None] / 255.0
    colored = (paper * (1 - share) + ink * share).round().astype(np.uint8)
    assert np.corrcoef(prepare(colored).ravel(), light_on_dark.ravel())[0, 1] > 0.99


def test_grey_rgb_rgba_and_alpha_only_agree(mnist):
    gray = paste(mnist.x_test[1], 150, 60, 80)
    reference = prepare(gray)
    assert np.allclose(prepare(np.dstack([gray] * 3)), reference, atol=1e-5)
    assert np.allclose(prepare(canvas(gray)), reference, atol=1e-5)
    assert np.allclose(prepare(gray.astype(np.float32) / 255.0), reference, atol=1e-5)
    alpha_only = np.zeros((280, 280, 4), np.uint8)
    alpha_only[..., 3] = gray  # black ink on a transparent background
    assert np.allclose(prepare(alpha_only), reference, atol=1e-5)
    white_ink = np.full((280, 280, 4), 255, np.uint8)
    white_ink[..., 3] = gray  # white ink on a transparent background
    assert np.allclose(prepare(white_ink), reference, atol=1e-5)


def test_ink_in_one_colour_channel_only_is_found(mnist):
    # A gray picture is read from one of its colour planes; one whose planes differ, from all.
    gray = paste(mnist.x_test[2], 160, 40, 70)
    reference = prepare(gray)
    blue_only = np.zeros((280, 280, 4), np.uint8)
    blue_only[..., 2], blue_only[..., 3] = gray, 255  # blue ink on black, opaque
    assert np.allclose(prepare(blue_only), reference, atol=1e-5)
    faint = np.dstack([np.zeros_like(gray)] * 2 + [gray // 2])  # dark blue ink, no alpha
    assert prepare(faint) is not None


@pytest.mark.parametrize(("size", "top", "left"), [(250, 10, 20), (80, 180, 10), (140, 0, 140)])
def test_a_real_digit_anywhere_on_the_canvas_comes_back(mnist, size, top, left):
    plain, shifted = [], []
    for digit in mnist.x_test[:20]:
        out = prepare(canvas(paste(digit, size, top, left)))
        plain.append(np.corrcoef(out.ravel(), digit.ravel())[0, 1])
        shifted.append(best_shifted_correlation(out, digit.astype(np.float32)))
    assert np.mean(plain) > 0.9 and np.median(plain) > 0.9
    # Every stroke is brought to one width (2.2 px), so MNIST's thinnest digits come back bolder:
    # the least alike of these 20 correlates 0.79 (0.86 when only strokes outside 1.35-3 px changed).
    assert min(shifted) > 0.75
    # Thin digits come back a little bolder (strokes are normalised), so the minimum is lower.
    assert min(plain) > 0.65


def test_specks_far_from_the_drawing_are_ignored():
    clean = pen(SEVEN, 18)
    dirty = clean.copy()
    dirty[5:8, 270:273] = 255  # a 3x3 speck in the corner
    dirty[270:272, 10:12] = 255
    assert np.allclose(prepare(dirty), prepare(clean), atol=1e-6)
    # A dot made with the brush beside a small digit drawn with a thin brush is ignored too.
    small = pen([[(120, 120), (160, 120), (135, 170)]], 6)
    dotted = small.copy()
    dotted[40:46, 200:206] = 255
    assert np.allclose(prepare(dotted), prepare(small), atol=1e-6)
    # A crossbar is part of the digit, not a speck.
    crossed = pen([*SEVEN, [(110, 150), (190, 150)]], 18)
    assert not np.allclose(prepare(crossed), prepare(clean), atol=0.1)


def dotted(img: np.ndarray, *dots: tuple[int, int, int]) -> np.ndarray:
    """The canvas with round dots (row, column, radius) added, as a pen taps them."""
    out = Image.fromarray(img)
    for row, col, r in dots:
        ImageDraw.Draw(out).ellipse((col - r, row - r, col + r, row + r), fill=(255, 255, 255, 255))
    return np.asarray(out)


def test_a_dot_above_the_strokes_is_a_mark_no_digit_has():
    one = [[(140, 100), (140, 250)]]
    assert prepare_stages(pen(one, 18)).marks == ()
    # An i and a j: the dot sits apart, above the stroke, a little to the side or not.
    i = prepare_stages(dotted(pen(one, 18), (55, 146, 11)))
    assert i.marks == (MARK_ABOVE,)
    j = prepare_stages(
        dotted(
            pen(
                [
                    [(150, 100), (150, 230), (120, 260), (90, 240)],
                ],
                16,
            ),
            (60, 150, 9),
        )
    )
    assert j.marks == (MARK_ABOVE,)
    # A small dot is also a speck to the model's input: the i is read as the stroke alone.
    small = prepare_stages(dotted(pen(one, 18), (60, 140, 6)))
    assert small.marks == (MARK_ABOVE,)
    assert np.allclose(small.centered, prepare(pen(one, 18)), atol=1e-6)
    # A 5 whose bar was drawn apart: the bar sits at the top of the rest, not above it.
    five = [
        [(110, 50), (200, 50)],
        [(110, 72), (105, 140), (170, 135), (185, 200), (150, 245), (95, 235)],
    ]
    assert prepare_stages(pen(five, 18)).marks == ()
    # A speck far off to the side of a 7 is ignored, not taken for a mark.
    assert prepare_stages(dotted(pen(SEVEN, 18), (10, 265, 4))).marks == ()


def test_a_mark_inside_the_drawing_is_a_mark_no_digit_has():
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    face = ImageDraw.Draw(img)
    face.ellipse((40, 40, 240, 240), outline=(255, 255, 255, 255), width=14)
    zero = prepare_stages(np.asarray(img).copy())
    assert zero.marks == ()
    face.arc((95, 120, 185, 195), 20, 160, fill=(255, 255, 255, 255), width=12)  # a smile
    eyes = dotted(np.asarray(img), (105, 105, 9), (105, 175, 9))
    assert prepare_stages(eyes).marks == (MARK_INSIDE,)
    # A scan whose ring broke: the piece left over is a stretch of the stroke at the edge, no mark.
    broken = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ring = ImageDraw.Draw(broken)
    ring.arc((40, 40, 240, 240), 20, 340, fill=(255, 255, 255, 255), width=14)
    ring.line([(236, 125), (236, 155)], fill=(255, 255, 255, 255), width=10)
    assert prepare_stages(np.asarray(broken)).marks == ()
    # An 8 and a 4 drawn in two strokes are one piece: no marks.
    eight = [
        [
            (140, 50),
            (90, 90),
            (140, 140),
            (190, 190),
            (140, 240),
            (90, 190),
            (140, 140),
            (190, 90),
            (140, 50),
        ]
    ]
    four = [[(150, 40), (70, 170), (210, 170)], [(170, 100), (170, 250)]]
    assert prepare_stages(pen(eight, 18)).marks == ()
    assert prepare_stages(pen(four, 18)).marks == ()


def test_few_real_digits_have_a_mark(mnist):
    # MNIST's digits, pasted onto the canvas: broken strokes are not taken for dots or eyes.
    marked = [
        bool(prepare_stages(canvas(paste(x, 200, 40, 40))).marks) for x in mnist.x_test[:1000]
    ]
    assert np.mean(marked) <= 0.01


def test_strokes_running_off_the_canvas_edge_still_count():
    # A 7 whose thick strokes cross the border on three sides: almost a quarter of the border is
    # ink, yet the background is still read from the rest of it.
    edge = pen([[(-10, 5), (170, 5), (70, 290)], [(60, 150), (300, 150)]], 30)
    border = np.concatenate([edge[0], edge[-1], edge[:, 0], edge[:, -1]])[:, 0]
    assert 0.2 < np.mean(border > 0) < 0.25
    out = prepare(edge)
    assert out is not None and out.max() == pytest.approx(1.0)
    assert max(ink_box(out)) == 20


@pytest.mark.parametrize("width", [2, 6, 18, 30])
def test_strokes_of_any_width_come_out_like_mnist(width):
    out = prepare(pen(SEVEN, width))
    run_lengths = (out[14:24] > 0.5).sum(axis=1)  # the diagonal, row by row
    # MNIST strokes are 2-3 pixels wide at 28x28 with a bright core.
    assert 1 <= np.median(run_lengths) <= 5
    assert np.percentile(out[out > 0.1], 75) > 0.8


def test_small_and_thin_line_on_a_huge_canvas_is_not_faint():
    gray = np.zeros((1200, 1200), np.uint8)
    gray[100:1100, 599:601] = 255  # a 2-pixel line, 1,000 pixels long
    out = prepare(gray)
    assert out.max() == pytest.approx(1.0)
    widths = (out > 0.5).sum(axis=1)
    assert np.median(widths[widths > 0]) >= 2
    medium = np.zeros((560, 560), np.uint8)
    medium[60:500, 278:281] = 255  # a 3-pixel line on a large canvas
    medium_widths = (prepare(canvas(medium)) > 0.5).sum(axis=1)
    assert np.median(medium_widths[medium_widths > 0]) >= 2  # MNIST strokes are 2-3 pixels wide
    tiny = np.zeros((280, 280), np.uint8)
    tiny[130:142, 140:146] = 255  # a 12x6 drawing still fills the 20-pixel box
    assert ink_box(prepare(tiny))[0] >= 19


def test_stages_and_naive_resize():
    image = pen(SEVEN, 18)
    stages = prepare_stages(image)
    assert stages.mask.shape == (280, 280) and stages.mask.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(image[..., 0] > 51)
    assert stages.cropped.shape == (np.ptp(rows) + 1, np.ptp(cols) + 1)
    assert max(stages.scaled.shape) == 20
    assert np.array_equal(stages.centered, prepare(image))
    naive = naive_resize(image)
    assert naive.shape == (28, 28) and naive.dtype == np.float32
    assert 0 <= naive.min() and naive.max() <= 1
    corner = pen([[(10, 10), (60, 10), (30, 70)]], 10)
    # The naive resize leaves the ink in the corner; the MNIST way centres it.
    assert center_of_mass(naive_resize(corner))[0] < 7
    assert prepare_stages(None) is None


def test_enlarge_is_nearest_neighbour():
    img = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    big = enlarge(img, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert big[0, 0] == 0 and big[2, 5] == 255 and big[5, 0] == 128 and big[3, 3] == 64


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def test_uploads_of_every_mode_decode(mnist):
    digit = paste(mnist.x_test[2], 100, 20, 20, side=140)
    reference = prepare(digit)
    assert np.allclose(prepare(load_image_bytes(png_bytes(255 - digit))), reference, atol=1e-5)
    assert load_image_bytes(png_bytes(digit, "1")).dtype == np.uint8  # bilevel, dithered
    for mode in ("P", "LA", "RGB", "RGBA"):
        decoded = load_image_bytes(png_bytes(digit, mode))
        assert decoded.dtype == np.uint8 and decoded.ndim in (2, 3)
        assert np.corrcoef(prepare(decoded).ravel(), reference.ravel())[0, 1] > 0.95, mode
    sixteen = io.BytesIO()
    Image.fromarray(digit.astype(np.uint16) * 257).save(sixteen, format="PNG")
    assert np.allclose(prepare(load_image_bytes(sixteen.getvalue())), reference, atol=1e-5)
    jpeg = io.BytesIO()
    Image.fromarray(255 - digit).save(jpeg, format="JPEG", quality=90)
    out = prepare(load_image_bytes(jpeg.getvalue()))
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.95


def test_bad_uploads_fail_clearly():
    with pytest.raises(ImageError, match="not an image"):
        load_image_bytes(b"%PDF-1.4 definitely not a picture")
    with pytest.raises(ImageError, match="empty"):
        load_image_bytes(b"")
    truncated = png_bytes(np.zeros((64, 64), np.uint8))[:60]
    with pytest.raises(ImageError, match="damaged"):
        load_image_bytes(truncated)
    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, format="PNG")  # 48 megapixels, a few kB of PNG
    with pytest.raises(ImageError, match="too large"):
        load_image_bytes(huge.getvalue())
