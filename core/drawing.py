"""A drawn or uploaded image to the 28x28 input the model expects, the way MNIST was made.

MNIST's digits were size-normalised into a 20x20 box keeping their aspect ratio (with
anti-aliasing) and centred in 28x28 by their centre of mass. A drawing goes through the same steps,
or off-centre, small, large, thin or thick drawings are misread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

SIZE = 28
BOX = 20
# Where MNIST's centre of mass lies (row, column), measured over the 10,000 test digits.
MNIST_CENTER = (14.0, 14.0)
# Median stroke width of MNIST digits at 28x28 (2 x ink area / boundary length), measured.
MNIST_STROKE = 2.6
WORK = 4 * BOX  # intermediate resolution for stroke normalisation
INK_THRESHOLD = 0.2
MIN_INK_PIXELS = 4
SPECK_FRACTION = 0.02
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An uploaded file is not a usable image; the message says why, for the user."""


@dataclass
class PreparedStages:
    """Every stage between a drawing and the model's input, for the UI."""

    mask: np.ndarray
    """Ink intensity at the original size, 0 to 1."""
    cropped: np.ndarray
    """The ink cropped to its bounding box (specks removed, strokes normalised)."""
    scaled: np.ndarray
    """The cropped ink with its longer side scaled to 20 pixels."""
    centered: np.ndarray
    """The final 28x28 input, centred by mass."""
    shift: tuple[int, int]
    """Rows and columns the 20x20 box moved to centre the mass."""


def ink_intensity(image: np.ndarray) -> np.ndarray:
    """Ink as 0..1 from any image: grey, RGB or RGBA, light on dark or dark on light."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    else:
        img = img.astype(np.float32)
        if img.size and img.max() > 1.0:
            img = img / 255.0
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3]
        if alpha.min() < 0.98:
            # Transparent background: the ink is wherever the image is opaque.
            return np.clip(alpha, 0.0, 1.0)
        img = img[..., :3]
    if img.ndim == 3:
        if img.shape[2] == 2:  # grey + alpha
            return ink_intensity(np.dstack([img[..., 0]] * 3 + [img[..., 1]]))
        gray = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif img.ndim == 2:
        gray = img
    else:
        raise ImageError(f"Expected a 2-D image, got an array of shape {img.shape}.")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        ink = (background - gray) / max(background, 1e-6)
    else:
        ink = (gray - background) / max(1.0 - background, 1e-6)
    return np.clip(ink, 0.0, 1.0)


def _remove_specks(ink: np.ndarray) -> np.ndarray:
    """Drop isolated specks much smaller than the drawing's largest stroke."""
    mask = ink > INK_THRESHOLD
    labels, count = ndimage.label(mask)
    if count <= 1:
        return np.where(mask, ink, 0.0) if count else np.zeros_like(ink)
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(areas >= max(MIN_INK_PIXELS, SPECK_FRACTION * areas.max())) + 1
    return np.where(np.isin(labels, keep), ink, 0.0)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    pil = Image.fromarray(img.astype(np.float32), mode="F")
    return np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def _stroke_width(ink: np.ndarray) -> float:
    """2 x area / boundary length: the width of a long stroke, in pixels."""
    mask = ink > 0.5
    area = mask.sum()
    if area == 0:
        return 0.0
    boundary = (mask & ~ndimage.binary_erosion(mask)).sum()
    return 2.0 * area / max(boundary, 1)


def _normalise_strokes(cropped: np.ndarray) -> np.ndarray:
    """Thicken thin strokes so that, at 20x20, they are about as wide as MNIST's."""
    h, w = cropped.shape
    factor = WORK / max(h, w)
    work = np.clip(_resize(cropped, max(1, round(w * factor)), max(1, round(h * factor))), 0.0, 1.0)
    if work.max() > 0:
        work = work / work.max()
    target = MNIST_STROKE * WORK / BOX
    width = _stroke_width(work)
    if 0 < width < 0.8 * target:
        radius = int(round((target - width) / 2))
        if radius >= 1:
            yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
            # Pad first, so the thickened stroke is not clipped at the crop's edges.
            work = np.pad(work, radius)
            work = ndimage.grey_dilation(work, footprint=(xx**2 + yy**2) <= radius**2)
    return work


def prepare_stages(image: np.ndarray) -> PreparedStages | None:
    """Every stage of the MNIST preprocessing of image; None when there is no ink."""
    mask = ink_intensity(image)
    if mask.ndim != 2 or min(mask.shape) < 1:
        return None
    ink = _remove_specks(mask)
    rows = np.flatnonzero(ink.max(axis=1) > INK_THRESHOLD)
    cols = np.flatnonzero(ink.max(axis=0) > INK_THRESHOLD)
    if len(rows) == 0 or (ink > INK_THRESHOLD).sum() < MIN_INK_PIXELS:
        return None
    cropped = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    work = _normalise_strokes(cropped)
    # Longer side to 20 pixels, aspect ratio kept, with anti-aliasing.
    h, w = work.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    scaled = np.clip(_resize(work, nw, nh), 0.0, 1.0)
    if scaled.max() > 0:
        scaled = scaled / scaled.max()
    centered, shift = _center_by_mass(scaled)
    return PreparedStages(mask=mask, cropped=work, scaled=scaled, centered=centered, shift=shift)


def _center_by_mass(scaled: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Place the scaled ink in 28x28 so its centre of mass sits where MNIST's does."""
    nh, nw = scaled.shape
    total = scaled.sum()
    cy = (scaled.sum(axis=1) * np.arange(nh)).sum() / total
    cx = (scaled.sum(axis=0) * np.arange(nw)).sum() / total
    top = int(round(MNIST_CENTER[0] - cy))
    left = int(round(MNIST_CENTER[1] - cx))
    # Keep the whole digit inside the field.
    top = min(max(top, 0), SIZE - nh)
    left = min(max(left, 0), SIZE - nw)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + nh, left : left + nw] = scaled
    return out, (top - (SIZE - nh) // 2, left - (SIZE - nw) // 2)


def prepare(image: np.ndarray) -> np.ndarray | None:
    """The (28, 28) float32 input in [0, 1] the model sees, or None when there is no ink."""
    stages = prepare_stages(image)
    return None if stages is None else stages.centered


def naive_resize(image: np.ndarray) -> np.ndarray:
    """The whole image squeezed to 28x28 (no cropping, no centring), for comparison."""
    ink = ink_intensity(image)
    return np.clip(_resize(ink, SIZE, SIZE), 0.0, 1.0)


def load_image_bytes(data: bytes) -> np.ndarray:
    """Decode an uploaded PNG/JPEG into an array; ImageError with a clear message otherwise."""
    if not data:
        raise ImageError("The file is empty.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"The image is too large ({width}x{height} pixels); "
                    "use one under 40 megapixels."
                )
            if width < 1 or height < 1:
                raise ImageError("The image has no pixels.")
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float32)
                arr = arr / max(float(arr.max()), 1.0)
                return (arr * 255).astype(np.uint8)
            if img.mode not in ("L", "RGB", "RGBA"):
                img = img.convert(
                    "RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB"
                )
            return np.asarray(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(
            "This file is not an image that can be read (use a PNG or JPEG of a digit)."
        ) from exc


def pad_square(img: np.ndarray) -> np.ndarray:
    """Centre an image on a black square (for showing non-square stages undistorted)."""
    h, w = img.shape[:2]
    side = max(h, w)
    out = np.zeros((side, side), dtype=img.dtype)
    out[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = img
    return out


def enlarge(img: np.ndarray, scale: int = 8) -> np.ndarray:
    """Nearest-neighbour upscaling to uint8, so small digits are shown sharp."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.asarray(img, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
