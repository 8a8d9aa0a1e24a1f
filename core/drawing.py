"""A drawn or uploaded image to the 28x28 input the model expects, made the way MNIST was made.

MNIST's digits were cropped to their ink, scaled so the longer side is 20 pixels (aspect ratio kept,
antialiased), and placed in a 28x28 field so that their centre of mass sits at the centre. A canvas
drawing only looks like MNIST to the network after the same steps; `naive_resize` shows what
happens without them.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SIZE = 28
DIGIT_BOX = 20
# Real MNIST test digits have their (intensity) centre of mass at (13.99, 14.01) in 0-based
# pixel-centre coordinates, so that is where a prepared drawing's mass goes.
CENTER = 14.0
MNIST_CENTER = (CENTER, CENTER)
MAX_PIXELS = 40_000_000
MIN_SIDE = 8
"""Uploads narrower or lower than this many pixels cannot hold a readable digit."""
MAX_DECODE_BYTES = 200_000_000
"""What decoding one upload may take (Pillow's pixels, plus a converted copy when its mode needs one)."""
KEPT_MODES = ("L", "RGB", "RGBA", "I", "F")
STRIP_PIXELS = 2_000_000
"""Pixels per strip when a large upload is shrunk (a strip's copies are a few MB)."""
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
"""Bytes Pillow keeps per pixel in the modes that take fewer than 4."""
# Ink is measured against the background colour; differences below this are paper or sensor noise.
MIN_CONTRAST = 0.08
MIN_INK_EXTENT = 3
# Stroke width is estimated at an intermediate size whose longer side is 4x the final 20 pixels.
WORK_SCALE = 4
WORK_SIZE = DIGIT_BOX * WORK_SCALE
# The same width estimator on real MNIST test digits gives a median of 1.86 px (10th percentile 1.37,
# 90th 2.59) at the 20-pixel scale. Strokes outside [THIN, THICK] are brought to one width, so a
# hairline on a big canvas, or a marker on a small one, reads like MNIST ink. A single width a
# little above MNIST's median read real writers best (benchmarks/bench_handwriting.py: optdigits
# 92.5% against 91.9% with the band [1.35, 3.0] kept as drawn, uploaded scans 95.9% against 94.8%).
STROKE_TARGET = 2.2
STROKE_THIN = 2.0
STROKE_THICK = 2.4
STROKE_THICK_TARGET = 2.2
# Ink wider than this share of the drawing's shorter side is a blob or a block, not a stroke:
# thinning it would only shrink it.
BLOB_RATIO = 0.5
# A connected piece of ink is a speck when it is both light (under this share of the largest
# piece's ink) and small (its longer side under this share of the largest piece's).
SPECK_MASS = 0.10
SPECK_EXTENT = 0.15
SPECK_GRID = 64
# A separate small mark that no digit has, found among the same pieces. Each is round (its box's
# shorter side at least MARK_ROUND of its longer: a dot, not a piece of a broken stroke) and
# measured against the largest piece and its size (its box's longer side):
# - a dot above it (an i's, a j's): its centre at least MARK_GAP of that size above the piece's
#   top, its bottom no lower than MARK_TOUCH below that top, at most MARK_SIDE of the size left or
#   right of the piece's middle, under MARK_DOT_MASS of its ink and MARK_DOT_EXTENT of its size;
# - a mark inside its box that does not touch it (a face's eyes): its centre at least MARK_MARGIN
#   of the size inside every edge of the box, under MARK_INSIDE_MASS of its ink and
#   MARK_INSIDE_EXTENT of its size.
# A 5's or a 7's bar drawn apart from the rest sits at the top, not above it. On real writers'
# digits (benchmarks/bench_handwriting.py) 0.23% have such a mark, all of them scans whose strokes
# broke into pieces, against 4% of the letters (most i's and j's) and nine in ten drawn faces.
MARK_ROUND = 0.5
MARK_GAP, MARK_TOUCH, MARK_SIDE = 0.1, 0.05, 0.5
MARK_DOT_MASS, MARK_DOT_EXTENT = 0.7, 0.4
MARK_MARGIN, MARK_INSIDE_MASS, MARK_INSIDE_EXTENT = 0.1, 0.2, 0.3
MARK_ABOVE, MARK_INSIDE = "a dot above it", "a mark inside it"
FIT_INK_LEVEL = 20
"""Pixels above this (of 255) count as ink when `fit_like_mnist` crops a uint8 image."""


class ImageError(ValueError):
    """An uploaded file that cannot be used as a digit; the message is meant for the user."""


@dataclass(frozen=True)
class PreparedStages:
    """Every step from a drawing to the network's input, for the UI to show."""

    mask: np.ndarray
    """Ink intensity in [0, 1] at the original size (specks removed)."""
    cropped: np.ndarray
    """The ink cropped to its bounding box."""
    scaled: np.ndarray
    """The cropped ink scaled so its longer side is 20 pixels."""
    centered: np.ndarray
    """The final (28, 28) float32 input: white ink on black, centre of mass at the centre."""
    shift: tuple[int, int] = (0, 0)
    """Rows and columns the centring by mass moved the ink away from plain box centring."""
    stroke_note: str = ""
    """Empty, or how the stroke width was adjusted to look like MNIST's."""
    marks: tuple[str, ...] = ()
    """Separate marks no digit has (MARK_ABOVE, MARK_INSIDE): a sign it is a letter or a face."""


def prepare(image: np.ndarray) -> np.ndarray | None:
    """The (28, 28) float32 MNIST-style input for a drawing or upload, or None when it has no ink."""
    stages = prepare_stages(image)
    return None if stages is None else stages.centered


def prepare_stages(image: np.ndarray | None) -> PreparedStages | None:
    """Every stage of preparing a drawing (ink, crop, scale, centre), or None when it has no ink."""
    if image is None:
        return None
    ink = ink_intensity(image)
    if ink is None:
        return None
    pieces = _pieces(ink)
    marks = _marks(pieces)
    ink = _remove_specks(ink, pieces)
    box = _bounding_box(ink)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    if max(y1 - y0, x1 - x0) < MIN_INK_EXTENT:
        return None
    cropped = ink[y0:y1, x0:x1]
    work = _resize(cropped, _fit(cropped.shape, WORK_SIZE))
    work, note = _normalise_stroke(work)
    # Thinning keeps the box of the drawing (and so its aspect ratio); thickening grows it.
    scaled = _scale_to_box(work, recrop=not note.startswith("thick"))
    if scaled is None:
        return None
    centered, shift = _center_by_mass(scaled)
    return PreparedStages(
        mask=ink,
        cropped=cropped,
        scaled=scaled,
        centered=centered,
        shift=shift,
        stroke_note=note,
        marks=marks,
    )


def fit_like_mnist(img: np.ndarray) -> np.ndarray:
    """uint8 ink cropped, its longer side scaled to 20 pixels (antialiased), centred by mass in
    28x28: how MNIST's digits were made."""
    ys, xs = np.nonzero(img > FIT_INK_LEVEL)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    if ys.size == 0:
        return out.astype(np.uint8)
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = DIGIT_BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), np.float32)
    total = float(small.sum()) or 1.0
    cy = float(small.sum(axis=1) @ np.arange(nh)) / total
    cx = float(small.sum(axis=0) @ np.arange(nw)) / total
    top = min(max(math.floor(CENTER - cy + 0.5), 0), IMAGE_SIZE - nh)
    left = min(max(math.floor(CENTER - cx + 0.5), 0), IMAGE_SIZE - nw)
    out[top : top + nh, left : left + nw] = small
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def naive_resize(image: np.ndarray) -> np.ndarray:
    """The whole canvas squashed to 28x28 with no crop or centring: what not preprocessing gives."""
    ink = ink_intensity(image)
    if ink is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out = _resize(ink, (IMAGE_SIZE, IMAGE_SIZE))
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def pad_square(img: np.ndarray) -> np.ndarray:
    """The image centred on a black square, so non-square stages are shown undistorted."""
    h, w = img.shape[:2]
    side = max(h, w)
    out = np.zeros((side, side), dtype=img.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = img
    return out


def enlarge(img28: np.ndarray, scale: int = 8) -> np.ndarray:
    """A uint8 nearest-neighbour enlargement for display (st.image blurs small images)."""
    img = np.asarray(img28)
    if img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    scale = max(1, int(scale))
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def load_image_bytes(data: bytes, max_side: int | None = None) -> np.ndarray:
    """An uploaded PNG/JPEG (or any Pillow format; an animation's first frame) as a uint8 gray,
    RGB or RGBA array, decoded once.

    Size and memory are checked from the header before any pixel is decoded; with max_side, a
    JPEG is decoded at a reduced scale and any image is shrunk in Pillow (box filter) so its
    longer side is at most max_side before it becomes an array.
    """
    if not data:
        raise ImageError("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # A damaged EXIF block only loses the orientation: Pillow's warning about it is
            # not the visitor's problem, nor the server log's.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")
            img = Image.open(io.BytesIO(data))
            if max_side:
                # JPEG decodes at 1/2, 1/4 or 1/8 scale, still at least max_side: far less memory.
                img.draft("RGB" if img.mode in ("RGB", "YCbCr") else None, (max_side, max_side))
            _check_header(img, shrink=bool(max_side) and max(img.size) > (max_side or 0))
            img.load()
            if max_side and max(img.size) > max_side:
                img = _shrink(img, math.ceil(max(img.size) / max_side))
            else:
                img = _supported_mode(img)
            # Upright after shrinking: turning a small image is cheap.
            ImageOps.exif_transpose(img, in_place=True)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"The image is too large to open safely; images up to "
            f"{MAX_PIXELS // 1_000_000} megapixels are accepted."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "This file is not an image Digit Lab can read; upload a PNG or JPEG."
        ) from exc
    except MemoryError as exc:
        raise ImageError("The image is too large to decode here; please shrink it.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as exc:
        if "too large" in str(exc).lower() or "too much memory" in str(exc).lower():
            raise ImageError(
                "The image holds more compressed metadata than is safe to unpack; "
                "save it again as a plain PNG or JPEG."
            ) from exc
        raise ImageError(
            f"The image could not be decoded; it may be truncated or damaged ({exc})."
        ) from exc
    array = _to_array(img)
    if array.size == 0:
        raise ImageError("The image decoded to nothing.")
    return array


def _check_header(img: Image.Image, shrink: bool) -> None:
    """Refuse, from the header alone, images too small to hold a digit or too large to decode."""
    width, height = img.size
    if width == 0 or height == 0:
        raise ImageError("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is too large ({width:,} x {height:,} pixels); images up to "
            f"{MAX_PIXELS // 1_000_000} megapixels are accepted. Please shrink it."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"The image is {width:,} x {height:,} pixels (width x height): too small to hold a "
            f"digit. Upload one at least {MIN_SIDE} pixels high and wide."
        )
    needed = width * height * BYTES_PER_PIXEL.get(img.mode, 4)
    if not shrink and img.mode not in KEPT_MODES:
        needed += width * height * 4  # converted whole, not strip by strip
    if needed > MAX_DECODE_BYTES:
        raise ImageError(
            f"The image ({width:,} x {height:,} pixels, {img.mode}) would take about "
            f"{needed / 1e6:,.0f} MB of memory to decode, over the {MAX_DECODE_BYTES / 1e6:.0f} MB "
            "allowed; please shrink it."
        )


def _shrink(img: Image.Image, factor: int) -> Image.Image:
    """img averaged over factor x factor blocks, in a supported mode, a strip at a time: a
    strip's converted copy is all the memory it takes beside the decoded image."""
    width, height = img.size
    rows = factor * max(1, STRIP_PIXELS // (width * factor))
    out = None
    for top in range(0, height, rows):
        strip = _supported_mode(img.crop((0, top, width, min(height, top + rows))))
        small = strip.reduce(factor)
        if out is None:
            out = Image.new(small.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(small, (0, top // factor))
    return out


def _supported_mode(img: Image.Image) -> Image.Image:
    """The decoded image in a mode Pillow can shrink and numpy can read: L, RGB, RGBA, I or F."""
    mode = img.mode
    if mode in KEPT_MODES:
        return img
    if mode.startswith("I;16"):
        return img.convert("I")
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode in ("LA", "La", "RGBa"):
        return img.convert("RGBA")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(
            f"Images in the {mode} colour mode cannot be read; save it as an RGB or grayscale "
            "PNG or JPEG."
        ) from exc


def ink_intensity(image: np.ndarray) -> np.ndarray | None:
    """Ink in [0, 1] at the image's own size, whatever the colours; None when there is no ink."""
    planes = _color_planes(image)
    if planes is None:
        return None
    diff = border_diff = None
    for plane in planes:
        border = np.concatenate([plane[0], plane[-1], plane[1:-1, 0], plane[1:-1, -1]])
        # The background is the border's median colour, so dark-on-light and light-on-dark agree.
        background = np.float32(np.median(border))
        d = np.abs(plane - background)
        b = np.abs(border - background)
        diff = d if diff is None else np.maximum(diff, d, out=diff)
        border_diff = b if border_diff is None else np.maximum(border_diff, b)
    # Paper texture and sensor noise at the border set the level below which nothing is ink;
    # quartiles ignore strokes that run off the edge (up to a quarter of the border).
    q25, q50, q75 = np.quantile(border_diff, [0.25, 0.5, 0.75])
    floor = max(MIN_CONTRAST * 255.0, float(q50 + 3.0 * (q75 - q25)))
    peak = float(diff.max())
    if peak - floor < MIN_CONTRAST * 255.0:
        return None
    diff -= floor
    diff *= 1.0 / (peak - floor)
    return np.clip(diff, 0.0, 1.0, out=diff)


# ----- helpers --------------------------------------------------------------------------------


def _to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.size and values.max() > 255 else 255.0
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(img, dtype=np.uint8)


def _color_planes(image: np.ndarray) -> list[np.ndarray] | None:
    """The colour channels as float32 (H, W) planes in 0-255, transparency flattened; None if blank."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] < 2 or arr.shape[1] < 2 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected a gray, RGB or RGBA image array, got shape {arr.shape}")
    scale = 1.0
    if arr.dtype.kind == "f":
        arr = np.nan_to_num(arr.astype(np.float32))
        if float(arr.max()) <= 1.0:
            scale = 255.0
    channels = arr.shape[2]
    has_alpha = channels in (2, 4)
    if has_alpha:
        lo, hi = float(arr[:, :, -1].min()), float(arr[:, :, -1].max())
        if hi <= 0.0:
            return None
        if lo == hi:
            channels -= 1
            has_alpha = False
    # Per-channel planes: numpy reduces over a short last axis slowly. A gray picture stored in
    # colour channels (the canvas: white ink on black, RGBA) needs one colour plane, not three.
    colors = channels - 1 if has_alpha else channels
    gray = colors == 3 and all(np.array_equal(arr[:, :, 0], arr[:, :, c]) for c in (1, 2))
    kept = [0] if gray else list(range(colors))
    planes = [arr[:, :, c].astype(np.float32) for c in kept + ([channels - 1] if has_alpha else [])]
    if scale != 1.0:
        planes = [p * scale for p in planes]
    if not has_alpha:
        return planes
    color, alpha = planes[:-1], planes[-1]
    # Ink may live in the alpha channel (a transparent background): flatten onto whichever of
    # black or white contrasts with the visible pixels.
    opaque = alpha > 127.5
    visible = [float(c[opaque].mean()) if opaque.any() else float(c.mean()) for c in color]
    backdrop = 255.0 if np.mean(visible) < 127.5 else 0.0
    a = alpha * (1.0 / 255.0)
    return [c * a + backdrop * (1.0 - a) for c in color]


def _bounding_box(ink: np.ndarray, level: float = 0.05) -> tuple[int, int, int, int] | None:
    on = ink > level
    rows = np.flatnonzero(on.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


@dataclass(frozen=True)
class _Pieces:
    """The 8-connected pieces of a drawing's ink, found on a coarse grid (SPECK_GRID cells a side)."""

    factor: int
    """Pixels per grid cell."""
    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    piece: np.ndarray
    """The horizontal runs of ink cells (row, start, end) and the piece each belongs to."""
    mass: np.ndarray
    """Each piece's ink."""
    box: np.ndarray
    """(n, 4) each piece's top, bottom, left and right edges, in pixels."""
    main: int
    """The piece with the most ink."""


def _pieces(ink: np.ndarray) -> _Pieces | None:
    """The pieces of ink, or None when there are fewer than two."""
    h, w = ink.shape
    f = max(1, math.ceil(max(h, w) / SPECK_GRID))
    # Block means on a coarse grid: connected pieces are found there, in well under a millisecond.
    img = Image.fromarray(ink, mode="F")
    mass = np.asarray(img.reduce(f) if f > 1 else img, dtype=np.float32)
    rows, starts, ends, piece = _row_runs(mass > 0.02)
    count = int(piece.max()) + 1 if piece.size else 0
    if count <= 1:
        return None
    cumulative = np.pad(np.cumsum(mass, axis=1), ((0, 0), (1, 0)))
    run_mass = cumulative[rows, ends] - cumulative[rows, starts]
    piece_mass = np.bincount(piece, weights=run_mass, minlength=count)
    box = np.zeros((count, 4))
    for k, (lo_values, hi_values) in enumerate(((rows, rows + 1), (starts, ends))):
        lo = np.full(count, np.inf)
        hi = np.full(count, -np.inf)
        np.minimum.at(lo, piece, lo_values)
        np.maximum.at(hi, piece, hi_values)
        box[:, 2 * k], box[:, 2 * k + 1] = lo * f, hi * f
    main = int(np.argmax(piece_mass))
    return _Pieces(f, rows, starts, ends, piece, piece_mass, box, main)


def _remove_specks(ink: np.ndarray, pieces: _Pieces | None) -> np.ndarray:
    """Ink without specks: pieces that are both light and small next to the largest piece."""
    if pieces is None:
        return ink
    f, main = pieces.factor, pieces.main
    top, bottom, left, right = pieces.box.T
    # In pixels: partly covered cells at either end do not count.
    extent = np.maximum(bottom - top, right - left) - f + 1
    speck = (pieces.mass < SPECK_MASS * pieces.mass[main]) & (extent < SPECK_EXTENT * extent[main])
    if not speck.any():
        return ink
    cleaned = ink.copy()
    on = speck[pieces.piece]
    for r, c0, c1 in zip(pieces.rows[on], pieces.starts[on], pieces.ends[on], strict=True):
        cleaned[r * f : (r + 1) * f, c0 * f : c1 * f] = 0.0
    return cleaned


def _marks(pieces: _Pieces | None) -> tuple[str, ...]:
    """The kinds of separate mark no digit has (MARK_ABOVE, MARK_INSIDE) among the pieces."""
    if pieces is None:
        return ()
    top, bottom, left, right = pieces.box.T
    k = pieces.main
    size = max(bottom[k] - top[k], right[k] - left[k])
    extent = np.maximum(bottom - top, right - left)
    row, col = (top + bottom) / 2, (left + right) / 2
    is_round = np.minimum(bottom - top, right - left) >= MARK_ROUND * extent
    other = (np.arange(len(pieces.mass)) != k) & is_round
    share = pieces.mass / pieces.mass[k]
    margin = MARK_MARGIN * size
    above = (
        other
        & (row < top[k] - MARK_GAP * size)
        & (bottom <= top[k] + MARK_TOUCH * size)
        & (np.abs(col - (left[k] + right[k]) / 2) < MARK_SIDE * size)
        & (share < MARK_DOT_MASS)
        & (extent < MARK_DOT_EXTENT * size)
    )
    inside = (
        other
        & (row > top[k] + margin)
        & (row < bottom[k] - margin)
        & (col > left[k] + margin)
        & (col < right[k] - margin)
        & (share < MARK_INSIDE_MASS)
        & (extent < MARK_INSIDE_EXTENT * size)
    )
    return tuple(
        name for name, found in ((MARK_ABOVE, above), (MARK_INSIDE, inside)) if found.any()
    )


def _row_runs(on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal runs of True cells (row, start, end) and the 8-connected piece of each.

    Union-find over runs: a digit on a 64x64 grid has a few hundred runs, so this takes tens of
    microseconds where labelling every cell would take a millisecond.
    """
    h, w = on.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = on
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    ends = np.nonzero(step == -1)[1]
    n = len(rows)
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    row_list, start_list, end_list = rows.tolist(), starts.tolist(), ends.tolist()
    first_in_row: dict[int, int] = {}
    for i, r in enumerate(row_list):
        first_in_row.setdefault(r, i)
    for i in range(n):
        j = first_in_row.get(row_list[i] - 1)
        if j is None:
            continue
        # Runs in the row above touch this one, diagonals included, when their spans overlap.
        while j < n and row_list[j] == row_list[i] - 1:
            if start_list[j] <= end_list[i] and start_list[i] <= end_list[j]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            j += 1
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    piece = np.unique(roots, return_inverse=True)[1] if n else roots
    return rows, starts, ends, piece


def _fit(shape: tuple[int, int], longer: int) -> tuple[int, int]:
    h, w = shape
    side = max(h, w)
    return max(1, int(h * longer / side + 0.5)), max(1, int(w * longer / side + 0.5))


def _resize(ink: np.ndarray, size: tuple[int, int], method: int | None = None) -> np.ndarray:
    """Resize a float ink image to (h, w): box filter to shrink, bilinear to grow."""
    h, w = size
    if method is None:
        method = Image.Resampling.BOX if h <= ink.shape[0] else Image.Resampling.BILINEAR
    img = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32), mode="F")
    return np.array(img.resize((w, h), method), dtype=np.float32)


def _stroke_width(work: np.ndarray) -> float:
    """Mean stroke width in final (20-pixel box) pixels: twice the ink area over its perimeter."""
    on = np.pad(work > 0.5, 1)
    area = int(on.sum())
    if area == 0:
        return 0.0
    perimeter = np.count_nonzero(on[1:] != on[:-1]) + np.count_nonzero(on[:, 1:] != on[:, :-1])
    return 2.0 * area / perimeter / WORK_SCALE


def _morph(work: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """Grey dilation (grow) or erosion by a near-disk of the given radius."""
    reduce = np.maximum if grow else np.minimum
    out = np.pad(work, radius) if grow else work
    for step in range(radius):
        h, w = out.shape
        p = np.pad(out, 1)
        shifts = [p[0:h, 1 : w + 1], p[2:, 1 : w + 1], p[1 : h + 1, 0:w], p[1 : h + 1, 2:]]
        if step % 2:
            shifts += [p[0:h, 0:w], p[0:h, 2:], p[2:, 0:w], p[2:, 2:]]
        acc = out
        for s in shifts:
            acc = reduce(acc, s)
        out = acc
    return out


def _normalise_stroke(work: np.ndarray) -> tuple[np.ndarray, str]:
    """Thicken hairlines and thin marker strokes towards MNIST's stroke width."""
    width = _stroke_width(work)
    if width <= 0.0:
        return work, ""
    side = max(work.shape)
    w_work = width * WORK_SCALE
    if width < STROKE_THIN:
        # Growing by r on each side adds 2r to the stroke and to the box: solve for the final width.
        r = (STROKE_TARGET * side - DIGIT_BOX * w_work) / (2.0 * (DIGIT_BOX - STROKE_TARGET))
        radius = int(round(r))
        if radius >= 1:
            return _morph(work, radius, grow=True), "thin strokes thickened to MNIST's width"
    elif width > STROKE_THICK and w_work < BLOB_RATIO * min(work.shape):
        r = (DIGIT_BOX * w_work - STROKE_THICK_TARGET * side) / (
            2.0 * (DIGIT_BOX - STROKE_THICK_TARGET)
        )
        radius = min(int(round(r)), int(w_work / 4))
        if radius >= 1:
            thinner = _morph(work, radius, grow=False)
            # Keep the erosion only when it leaves the drawing whole enough to read.
            if thinner.sum() >= 0.3 * work.sum():
                return thinner, "thick strokes thinned to MNIST's width"
    return work, ""


def _scale_to_box(work: np.ndarray, recrop: bool = True) -> np.ndarray | None:
    tight = work
    if recrop:
        box = _bounding_box(work, level=0.02)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        tight = work[y0:y1, x0:x1]
    scaled = _resize(tight, _fit(tight.shape, DIGIT_BOX), Image.Resampling.LANCZOS)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    peak = float(scaled.max())
    if peak <= 0.0:
        return None
    # MNIST's strokes reach full white; antialiasing a thin stroke should not leave it grey.
    return scaled * (1.0 / peak)


def _center_by_mass(scaled: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Place the scaled ink in a 28x28 field with its centre of mass at (14, 14)."""
    h, w = scaled.shape
    total = float(scaled.sum())
    cy = float(scaled.sum(axis=1) @ np.arange(h)) / total
    cx = float(scaled.sum(axis=0) @ np.arange(w)) / total
    # Whole-pixel shifts as MNIST made them, clipped so no ink falls off the field.
    top = min(max(math.floor(CENTER - cy + 0.5), 0), IMAGE_SIZE - h)
    left = min(max(math.floor(CENTER - cx + 0.5), 0), IMAGE_SIZE - w)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[top : top + h, left : left + w] = scaled
    return out, (top - (IMAGE_SIZE - h) // 2, left - (IMAGE_SIZE - w) // 2)
