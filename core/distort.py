"""Training-time distortions of whole batches, in TensorFlow: elastic warps and pen widths.

Elastic distortion (Simard, Steinkraus and Platt, 2003): every pixel is moved by a random
displacement field smoothed with a Gaussian, so a stroke bends and swells the way one writer's hand
differs from another's, which turns, zooms and shifts (the Keras layers) cannot do. Pen widths:
real pens and fingers draw thicker and thinner strokes than MNIST's, and the Draw page's
preparation only brings them part of the way back.

Both take a (batch, 28, 28, 1) float batch in [0, 1] and a stateless seed pair, and change a share
of its examples, drawn afresh for every batch: the same seed gives the same batch on every machine.
"""

from __future__ import annotations

import math

import tensorflow as tf

ELASTIC_SIGMA = 4.0
"""Smoothness of the displacement field, in pixels (Simard et al. used 4 on MNIST)."""
ELASTIC_SHIFT = 3.0
"""Largest displacement of any pixel, in pixels; each example draws its own between 0 and this."""
THIN_KEEPS = 0.55
"""A thinned example keeps at least this share of its ink, or it is left as it was (thinning a
fine stroke would rub it out)."""


def _gaussian(sigma: float) -> tf.Tensor:
    radius = int(math.ceil(3 * sigma))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * (x / sigma) ** 2)
    return k / tf.reduce_sum(k)


def _smooth(field: tf.Tensor, sigma: float) -> tf.Tensor:
    """A (batch, h, w, 2) field blurred by a Gaussian, one axis at a time."""
    k = _gaussian(sigma)
    n = int(k.shape[0])
    down = tf.tile(tf.reshape(k, [n, 1, 1, 1]), [1, 1, 2, 1])
    across = tf.tile(tf.reshape(k, [1, n, 1, 1]), [1, 1, 2, 1])
    field = tf.nn.depthwise_conv2d(field, down, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(field, across, [1, 1, 1, 1], "SAME")


def bilinear(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """(batch, h, w) images sampled at fractional (rows, cols) of the same shape; black outside."""
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    r0, c0 = tf.floor(rows), tf.floor(cols)
    wr, wc = rows - r0, cols - c0
    r0, c0 = tf.cast(r0, tf.int32), tf.cast(c0, tf.int32)
    batch = tf.broadcast_to(tf.range(shape[0])[:, None, None], tf.shape(r0))
    # One pixel of black around the image: samples beyond it read black.
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1]])

    def at(r, c):
        r = tf.clip_by_value(r + 1, 0, h + 1)
        c = tf.clip_by_value(c + 1, 0, w + 1)
        return tf.gather_nd(padded, tf.stack([batch, r, c], axis=-1))

    top = (1 - wc) * at(r0, c0) + wc * at(r0, c0 + 1)
    bottom = (1 - wc) * at(r0 + 1, c0) + wc * at(r0 + 1, c0 + 1)
    return (1 - wr) * top + wr * bottom


def _seeds(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    """count distinct stateless seed pairs from one."""
    seed = tf.cast(seed, tf.int64)
    return [tf.stack([seed[0] * 7 + k + 1, seed[1]]) for k in range(count)]


def elastic(
    batch: tf.Tensor,
    seed: tf.Tensor,
    share: float,
    shift: float = ELASTIC_SHIFT,
    sigma: float = ELASTIC_SIGMA,
) -> tf.Tensor:
    """A share of the examples warped by a smooth random field that moves no pixel further than
    `shift` (each example draws its own largest move between 0 and shift)."""
    noise_seed, size_seed, pick_seed = _seeds(seed, 3)
    shape = tf.shape(batch)
    n, h, w = shape[0], shape[1], shape[2]
    field = tf.random.stateless_uniform(tf.stack([n, h, w, 2]), noise_seed, -1.0, 1.0)
    field = _smooth(field, sigma)
    field /= tf.reduce_max(tf.abs(field), axis=[1, 2, 3], keepdims=True) + 1e-6
    size = tf.random.stateless_uniform(tf.stack([n]), size_seed, 0.0, shift)
    chosen = tf.cast(tf.random.stateless_uniform(tf.stack([n]), pick_seed) < share, tf.float32)
    field *= (size * chosen)[:, None, None, None]
    rows = tf.cast(tf.range(h), tf.float32)[None, :, None] + field[..., 0]
    cols = tf.cast(tf.range(w), tf.float32)[None, None, :] + field[..., 1]
    return bilinear(batch[..., 0], rows, cols)[..., None]


def pen_width(batch: tf.Tensor, seed: tf.Tensor, share: float) -> tf.Tensor:
    """A share of the examples drawn with a thicker pen (half of them) or a thinner one: a 3x3
    grey dilation or erosion, blended in by a random 30-100%. Thinned strokes keep their
    brightness; an example that thinning would mostly rub out is left as it was."""
    pick_seed, blend_seed = _seeds(seed, 2)
    n = tf.shape(batch)[0]
    pick = tf.random.stateless_uniform(tf.stack([n]), pick_seed)
    blend = tf.random.stateless_uniform(tf.stack([n]), blend_seed, 0.3, 1.0)[:, None, None, None]
    thick = (1 - blend) * batch + blend * tf.nn.max_pool2d(batch, 3, 1, "SAME")
    thin = (1 - blend) * batch - blend * tf.nn.max_pool2d(-batch, 3, 1, "SAME")
    peak = tf.reduce_max(batch, axis=[1, 2, 3], keepdims=True)
    thin *= peak / (tf.reduce_max(thin, axis=[1, 2, 3], keepdims=True) + 1e-6)
    ink = tf.reduce_sum(batch, axis=[1, 2, 3]) + 1e-6
    kept = tf.reduce_sum(thin, axis=[1, 2, 3]) / ink >= THIN_KEEPS
    thicken = pick < share / 2
    thinning = (pick >= share / 2) & (pick < share) & kept
    out = tf.where(thicken[:, None, None, None], thick, batch)
    return tf.where(thinning[:, None, None, None], thin, out)


def apply(batch: tf.Tensor, seed: tf.Tensor, elastic_share: float, pen_share: float) -> tf.Tensor:
    """The training pipeline's distortions of one batch (shares of 0 skip them): elastic warps,
    then pen widths, clipped to [0, 1]. Training (core.data.make_dataset) and Explore's preview
    both call this, so the preview shows what training does."""
    if elastic_share <= 0 and pen_share <= 0:
        return batch
    seed = tf.cast(seed, tf.int64)
    if elastic_share > 0:
        batch = elastic(batch, seed, elastic_share)
    if pen_share > 0:
        batch = pen_width(batch, seed + tf.constant([1, 0], tf.int64), pen_share)
    return tf.clip_by_value(batch, 0.0, 1.0)
