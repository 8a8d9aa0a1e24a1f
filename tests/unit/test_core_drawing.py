"""core.drawing: a drawing becomes what MNIST would have made of it."""

import io

import numpy as np
import pytest
from PIL import Image

from core.drawing import (
    MNIST_CENTER,
    ImageError,
    load_image_bytes,
    naive_resize,
    prepare,
    prepare_stages,
)


def canvas(gray: np.ndarray) -> np.ndarray:
    """An opaque RGBA canvas image, as streamlit-drawable-canvas returns it."""
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def center_of_mass(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(img.shape)
    return (rows * img).sum() / img.sum(), (cols * img).sum() / img.sum()


def paste(digit: np.ndarray, size: int, top: int, left: int, side: int = 280) -> np.ndarray:
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))
    out = np.zeros((side, side), np.uint8)
    out[top : top + size, left : left + size] = big
    return out


def test_real_mnist_centre_of_mass_is_where_we_put_ours(mnist):
    coms = np.array([center_of_mass(x.astype(float)) for x in mnist.x_test[:2000]])
    assert np.allclose(coms.mean(axis=0), MNIST_CENTER, atol=0.1)


def test_off_centre_drawing_is_recentred_by_mass():
    gray = np.zeros((300, 300), np.uint8)
    gray[20:120, 200:230] = 255  # a bar in the top-right corner
    gray[20:40, 170:230] = 255
    out = prepare(canvas(gray))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() == pytest.approx(1.0)
    assert np.allclose(center_of_mass(out), MNIST_CENTER, atol=0.5)


def test_aspect_ratio_is_kept_and_longer_side_is_20():
    gray = np.zeros((280, 280), np.uint8)
    gray[40:240, 100:200] = 255  # 200 tall, 100 wide
    out = prepare(canvas(gray))
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert height == 20
    assert width == pytest.approx(10, abs=1)


def test_empty_inputs_give_none():
    assert prepare(canvas(np.zeros((280, 280), np.uint8))) is None
    assert prepare(np.zeros((280, 280, 4), np.uint8)) is None  # fully transparent
    assert prepare(np.full((50, 50), 255, np.uint8)) is None  # blank white paper
    speck = np.zeros((280, 280), np.uint8)
    speck[100, 100] = 255
    assert prepare(canvas(speck)) is None


def test_dark_on_light_equals_light_on_dark(mnist):
    gray = paste(mnist.x_test[0], 180, 50, 30)
    light_on_dark = prepare(canvas(gray))
    dark_on_light = prepare(canvas(255 - gray))
    assert np.allclose(light_on_dark, dark_on_light, atol=1e-5)


def test_grey_rgb_rgba_and_alpha_only_agree(mnist):
    gray = paste(mnist.x_test[1], 150, 60, 80)
    reference = prepare(gray)
    assert np.allclose(prepare(np.dstack([gray] * 3)), reference, atol=1e-5)
    assert np.allclose(prepare(canvas(gray)), reference, atol=1e-5)
    alpha_only = np.zeros((280, 280, 4), np.uint8)
    alpha_only[..., 3] = gray  # black ink on a transparent background
    assert np.allclose(prepare(alpha_only), reference, atol=1e-5)


@pytest.mark.parametrize(("size", "top", "left"), [(250, 10, 20), (80, 180, 10), (140, 0, 140)])
def test_a_real_digit_anywhere_on_the_canvas_comes_back(mnist, size, top, left):
    corr = []
    for digit in mnist.x_test[:20]:
        out = prepare(canvas(paste(digit, size, top, left)))
        corr.append(np.corrcoef(out.ravel(), digit.ravel())[0, 1])
    # Thin digits come back a little bolder (strokes are normalised), so the minimum is lower.
    assert min(corr) > 0.65 and np.mean(corr) > 0.9


def test_thin_strokes_are_thickened_like_mnist():
    gray = np.zeros((560, 560), np.uint8)
    gray[60:500, 278:281] = 255  # a 3-pixel line on a large canvas
    out = prepare(canvas(gray))
    widths = (out > 0.5).sum(axis=1)
    assert np.median(widths[widths > 0]) >= 2  # MNIST strokes are 2-3 pixels wide


def test_stages_and_naive_resize():
    gray = np.zeros((280, 280), np.uint8)
    gray[20:80, 20:50] = 255
    stages = prepare_stages(canvas(gray))
    assert stages.mask.shape == (280, 280)
    assert max(stages.scaled.shape) == 20
    assert np.array_equal(stages.centered, prepare(canvas(gray)))
    naive = naive_resize(canvas(gray))
    assert naive.shape == (28, 28)
    # The naive resize leaves the ink in the corner; the MNIST way centres it.
    assert center_of_mass(naive)[0] < 7


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_decode_or_fail_clearly(mnist):
    digit = paste(mnist.x_test[2], 100, 20, 20, side=140)
    decoded = load_image_bytes(png_bytes(255 - digit))
    assert np.allclose(prepare(decoded), prepare(digit), atol=1e-5)
    with pytest.raises(ImageError, match="not an image"):
        load_image_bytes(b"%PDF-1.4 definitely not a picture")
    with pytest.raises(ImageError, match="empty"):
        load_image_bytes(b"")
    huge = io.BytesIO()
    Image.new("L", (8000, 6000)).save(huge, format="PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image_bytes(huge.getvalue())
    palette = Image.fromarray(digit).convert("P")
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert prepare(load_image_bytes(buf.getvalue())) is not None
