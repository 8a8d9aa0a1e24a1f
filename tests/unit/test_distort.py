"""Elastic warps and pen widths (core.distort), and the training pipeline that applies them."""

import numpy as np
import pytest
import tensorflow as tf

from core import distort
from core.data import make_dataset
from core.models import ModelConfig


def _digits(n: int = 8, seed: int = 0, half: int = 1) -> np.ndarray:
    """n float (28, 28, 1) images with one cross each (strokes 2 * half + 1 wide), at random
    places."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28, 1), np.float32)
    for i in range(n):
        r, c = rng.integers(8, 20, 2)
        out[i, r - 6 : r + 6, c - half : c + half + 1] = 1.0
        out[i, r - half : r + half + 1, c - 6 : c + 6] = 1.0
    return out


def _seed(a: int, b: int = 0) -> tf.Tensor:
    return tf.constant([a, b], tf.int64)


def test_bilinear_at_whole_pixels_is_the_image_and_black_beyond_it():
    img = tf.constant(np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5))
    rows, cols = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    grid = [tf.constant(np.broadcast_to(a, (2, 5, 5)).astype(np.float32)) for a in (rows, cols)]
    np.testing.assert_allclose(distort.bilinear(img, *grid).numpy(), img.numpy())
    half = distort.bilinear(img, grid[0], grid[1] + 0.5).numpy()
    np.testing.assert_allclose(half[:, :, :4], (img.numpy()[:, :, :4] + img.numpy()[:, :, 1:]) / 2)
    far = distort.bilinear(img, grid[0] + 10.0, grid[1]).numpy()
    assert not far.any()


def test_elastic_with_share_zero_or_no_shift_leaves_the_batch_alone():
    batch = tf.constant(_digits())
    np.testing.assert_allclose(distort.elastic(batch, _seed(1), 0.0).numpy(), batch.numpy())
    np.testing.assert_allclose(
        distort.elastic(batch, _seed(1), 1.0, shift=0.0).numpy(), batch.numpy(), atol=1e-6
    )


def test_elastic_bends_every_chosen_example_and_is_the_same_for_the_same_seed():
    batch = tf.constant(_digits(16))
    once = distort.elastic(batch, _seed(5), 1.0).numpy()
    again = distort.elastic(batch, _seed(5), 1.0).numpy()
    other = distort.elastic(batch, _seed(6), 1.0).numpy()
    np.testing.assert_array_equal(once, again)
    assert np.abs(once - other).max() > 0.1
    moved = np.abs(once - batch.numpy()).reshape(16, -1).max(axis=1)
    # Each example draws its own largest move, between 0 and 3 pixels: most are bent visibly.
    assert (moved > 0.2).mean() >= 0.75
    # A warp moves ink, it does not make or lose much of it.
    ink = once.reshape(16, -1).sum(axis=1) / batch.numpy().reshape(16, -1).sum(axis=1)
    assert np.all((ink > 0.7) & (ink < 1.3))


def test_elastic_moves_no_pixel_further_than_its_shift():
    dot = np.zeros((64, 28, 28, 1), np.float32)
    dot[:, 14, 14] = 1.0
    out = distort.elastic(tf.constant(dot), _seed(2), 1.0, shift=2.0).numpy()[..., 0]
    rows, cols = np.nonzero(out.max(axis=0) > 1e-4)
    # A sample within 2 pixels of the dot (plus one for the bilinear neighbourhood) sees it.
    assert np.hypot(rows - 14, cols - 14).max() <= 2.0 * np.sqrt(2) + 1.0
    assert (np.abs(out - dot[..., 0]).reshape(64, -1).max(axis=1) > 0.05).mean() > 0.5


def test_elastic_share_picks_about_that_many_examples():
    batch = tf.constant(np.repeat(_digits(1), 400, axis=0))
    out = distort.elastic(batch, _seed(9), 0.3).numpy()
    changed = np.abs(out - batch.numpy()).reshape(400, -1).max(axis=1) > 1e-6
    assert 0.2 < changed.mean() < 0.4


def test_pen_width_thickens_half_and_thins_half_keeping_brightness():
    batch = tf.constant(_digits(200, half=2))  # strokes wide enough to thin
    out = distort.pen_width(batch, _seed(3), 1.0).numpy()
    before = batch.numpy().reshape(200, -1).sum(axis=1)
    after = out.reshape(200, -1).sum(axis=1)
    thicker, thinner = after > before * 1.05, after < before * 0.95
    assert 0.35 < thicker.mean() < 0.65 and 0.35 < thinner.mean() < 0.65
    assert (thicker | thinner).mean() > 0.95
    np.testing.assert_allclose(out.reshape(200, -1).max(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out, distort.pen_width(batch, _seed(3), 1.0).numpy())


def test_pen_width_leaves_a_stroke_that_thinning_would_mostly_rub_out():
    batch = tf.constant(_digits(200))  # 3-pixel strokes: erosion leaves a third of them
    out = distort.pen_width(batch, _seed(3), 1.0).numpy()
    ratio = out.reshape(200, -1).sum(axis=1) / batch.numpy().reshape(200, -1).sum(axis=1)
    assert ratio.min() >= distort.THIN_KEEPS - 1e-4
    assert np.any(ratio == 1.0) and np.any(ratio < 0.95)


def test_pen_width_never_rubs_out_a_fine_stroke():
    line = np.zeros((100, 28, 28, 1), np.float32)
    line[:, 4:24, 14] = 1.0  # a one-pixel 1: erosion would leave nothing
    out = distort.pen_width(tf.constant(line), _seed(4), 1.0).numpy()
    ink = out.reshape(100, -1).sum(axis=1)
    assert np.all(ink >= line.reshape(100, -1).sum(axis=1) - 0.01)


def test_pen_width_share_zero_leaves_the_batch_alone():
    batch = tf.constant(_digits())
    np.testing.assert_array_equal(distort.pen_width(batch, _seed(1), 0.0).numpy(), batch.numpy())


def _epoch(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(np.asarray(bx), np.asarray(by)) for bx, by in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_training_pipeline_warps_and_redraws_the_share_asked_for_reproducibly():
    x = np.rint(_digits(64)[..., 0] * 255).astype(np.uint8)
    y = (np.arange(64) % 10).astype(np.uint8)
    plain, plain_y = _epoch(make_dataset(x, y, 16, shuffle=True, seed=1))
    bent, bent_y = _epoch(make_dataset(x, y, 16, shuffle=True, seed=1, elastic=0.5, pen_width=0.5))
    again, _ = _epoch(make_dataset(x, y, 16, shuffle=True, seed=1, elastic=0.5, pen_width=0.5))
    # Same shuffle and labels; the images differ, and the same seed gives the same batches.
    np.testing.assert_array_equal(plain_y, bent_y)
    np.testing.assert_array_equal(bent, again)
    changed = np.abs(bent - plain).reshape(64, -1).max(axis=1) > 1e-3
    assert 0.5 < changed.mean() < 1.0
    assert bent.min() >= 0.0 and bent.max() <= 1.0


@pytest.mark.parametrize("field", ["elastic", "pen_width"])
def test_out_of_range_shares_are_named_against_their_field(field):
    errors = ModelConfig(**{field: 1.5}).errors()
    assert field in errors and "between 0 and 1" in errors[field]
