"""Real-looking canvas drawings for measuring the Draw page: real writers' digits, stroke digits,
letters and scribbles, each as the 280x280 RGBA image streamlit-drawable-canvas returns.

- optdigits (43 writers, scanned 32x32 bitmaps): traced (thinned to a centre line, then drawn
  with a round brush as the canvas draws) or scanned (the bitmap smoothly enlarged, its ink
  eroded or dilated), at random sizes and places, or uploaded as the bitmap itself. The
  tracer reopens loops the scan filled in (a blotted 9 or 6) and keeps short tails (the foot of
  a 4), which a plain centre line loses;
- stroke digits: hand-written styles of each digit (continental 1s, crossed 7s, open 4s, hooked
  9s ...) and Hershey font digits, jittered, slanted and smoothed like a hand;
- letters (Hershey stroke fonts from Debian's hershey-fonts-data, handwriting TTF fonts, and
  built-in strokes) leaving out the ones that look like digits, and scribbles and shapes.

Every generator is seeded: the same call gives the same drawings on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from core.strokes import chaikin

CANVAS = 280
SUPERSAMPLE = 2
BRUSHES = {"thin": (6, 10), "medium": (14, 22), "thick": (26, 40)}
"""Brush width ranges in canvas pixels (the Draw page's slider goes from 6 to 40)."""
LOOKALIKES = set("OoIlSsZzBbGgq")
"""Letters left out of the not-a-digit measure: they look like 0, 1, 5, 2, 8, 6, 9."""
HERSHEY_DIR = Path("/usr/share/hershey-fonts")
HERSHEY_FONTS = ("futural", "futuram", "rowmans", "scripts", "scriptc", "cursive", "timesi")
TTF_FONTS = (
    "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",
    "/usr/share/fonts/truetype/breip/Breip.ttf",
    "/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf",
    "/usr/share/fonts/truetype/rufscript/Rufscript010.ttf",
    "/usr/share/fonts/truetype/sjfonts/Delphine.ttf",
    "/usr/share/fonts/truetype/sjfonts/SteveHand.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)

FONT_PACKAGES = (
    "hershey-fonts-data fonts-dkg-handwriting fonts-breip fonts-femkeklaver fonts-rufscript "
    "fonts-sjfonts fonts-dejavu-core"
)
"""The Debian packages the letters come from (apt-get install -y ...)."""


def missing_fonts() -> list[str]:
    """The font files the letter set would draw from that are not on this machine."""
    wanted = [HERSHEY_DIR / f"{font}.jhf" for font in HERSHEY_FONTS]
    wanted += [Path(path) for path in TTF_FONTS]
    return [str(path) for path in wanted if not path.is_file()]


Stroke = list[tuple[float, float]]


@dataclass(frozen=True)
class Drawing:
    """One canvas image and what it is."""

    image: np.ndarray
    """(280, 280, 4) uint8, white ink on opaque black (a canvas); or an uploaded gray image."""
    label: int
    """The digit, or -1 for something that is not a digit."""
    group: str
    """Which set and rendering it comes from (for the breakdown)."""


# ----- optdigits --------------------------------------------------------------------------------


def load_optdigits(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The (n, 32, 32) bool bitmaps and (n,) labels of one optdigits-orig file."""
    lines = Path(path).read_text().splitlines()
    start = 0
    while start < len(lines) and not _is_bitmap_line(lines[start]):
        start += 1
    bitmaps, labels = [], []
    i = start
    while i + 32 < len(lines) + 0 and _is_bitmap_line(lines[i]):
        rows = lines[i : i + 32]
        bitmaps.append(np.array([[c == "1" for c in row] for row in rows], dtype=bool))
        labels.append(int(lines[i + 32]))
        i += 33
    return np.stack(bitmaps), np.asarray(labels, dtype=np.int64)


def _is_bitmap_line(line: str) -> bool:
    return len(line) == 32 and set(line) <= {"0", "1"}


def thin(bitmap: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel centre line of a binary image."""
    img = np.pad(bitmap.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = [
                np.roll(np.roll(img, dy, 0), dx, 1)
                for dy, dx in ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))
            ]
            # p2..p9 clockwise from north: roll by +1 row brings the north neighbour here.
            p2, p3, p4, p5, p6, p7, p8, p9 = p
            neighbours = sum(q.astype(np.int32) for q in p)
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            transitions = sum(
                ((a == 0) & (b == 1)).astype(np.int32)
                for a, b in zip(ring[:-1], ring[1:], strict=True)
            )
            if step == 0:
                c1 = (p2 * p4 * p6) == 0
                c2 = (p4 * p6 * p8) == 0
            else:
                c1 = (p2 * p4 * p8) == 0
                c2 = (p2 * p6 * p8) == 0
            kill = (img == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & c1 & c2
            if kill.any():
                img[kill] = 0
                changed = True
    return img[1:-1, 1:-1].astype(bool)


TRACE_SCALE = 3
"""The bitmap is smoothly enlarged this much before thinning, so the centre line is not jagged."""


LOOP_RATIO = 1.9
"""Ink thicker than this many pen half-widths is a loop the scan filled in (a blotted 9 or 6)."""
SPUR_LENGTH = 0.6
"""Branches from a free end to a junction shorter than this many half-widths are thinning spurs."""


def centre_line(bitmap: np.ndarray) -> np.ndarray:
    """The pen's path through a thick bitmap: enlarged, smoothed, thinned, its spurs pruned.

    Two things a plain centre line gets wrong about what the writer drew are put right:
    - a loop the scan filled in (the pen was wider than the loop's hole) is reopened where the
      ink is far thicker than the pen, so the path goes round it as the pen did;
    - only spurs (short branches from a free end to a junction) are pruned: eroding every free
      end by the pen's half-width, as this did before, lost short tails such as the foot of a 4
      below its bar, and the 4 was drawn as an L.

    Returns (row, col) points of the centre line in bitmap pixel units.
    """
    k = TRACE_SCALE
    big = np.kron(bitmap.astype(np.float32), np.ones((k, k), np.float32))
    smooth = ndimage.gaussian_filter(np.pad(big, k), sigma=k * 0.7) > 0.5
    skeleton = thin(smooth)
    if not skeleton.any():
        return np.zeros((0, 2))
    depth = ndimage.distance_transform_edt(smooth)
    half_width = float(np.median(depth[skeleton]))
    skeleton = thin(smooth & ~_filled_loops(depth, half_width))
    skeleton = _prune_spurs(skeleton, int(round(SPUR_LENGTH * half_width)))
    ys, xs = np.nonzero(skeleton)
    return np.stack([(ys - k) / k, (xs - k) / k], axis=1) if ys.size else np.zeros((0, 2))


def _filled_loops(depth: np.ndarray, half_width: float) -> np.ndarray:
    """Holes to punch where the ink is over LOOP_RATIO half-widths deep: one at each such
    blob's centre, half a half-width wide."""
    core = depth > LOOP_RATIO * half_width
    holes = np.zeros_like(core)
    if not core.any():
        return holes
    labels, count = ndimage.label(core)
    for centre in ndimage.center_of_mass(core, labels, range(1, count + 1)):
        holes[tuple(np.round(centre).astype(int))] = True
    return ndimage.binary_dilation(holes, iterations=max(1, int(round(half_width * 0.5))))


def _neighbours(skeleton: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.int32)
    return ndimage.convolve(skeleton.astype(np.int32), kernel, mode="constant") - skeleton


def _branch(
    skeleton: np.ndarray, neighbours: np.ndarray, end: tuple[int, int], limit: int
) -> tuple[list, bool]:
    """The pixels from a free end along the centre line, up to `limit` of them, and whether the
    walk reached a junction (a pixel with three or more neighbours)."""
    path, cur = [end], end
    while len(path) <= limit:
        y, x = cur
        ahead = [
            (y + dy, x + dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy or dx)
            and 0 <= y + dy < skeleton.shape[0]
            and 0 <= x + dx < skeleton.shape[1]
            and skeleton[y + dy, x + dx]
            and (y + dy, x + dx) not in path
        ]
        if len(ahead) != 1:
            return path, False
        cur = ahead[0]
        if neighbours[cur] >= 3:
            return path, True
        path.append(cur)
    return path, False


def _prune_spurs(skeleton: np.ndarray, length: int) -> np.ndarray:
    """Remove branches from a free end to a junction no longer than `length`; keep the others
    whole (eroding every end instead would eat short real tails)."""
    out = skeleton.copy()
    for _ in range(3):
        neighbours = _neighbours(out)
        spurs = []
        for y, x in np.argwhere(out & (neighbours == 1)):
            path, junction = _branch(out, neighbours, (int(y), int(x)), length)
            if junction:
                spurs.append(path)
        if not spurs:
            break
        for path in spurs:
            for p in path:
                out[p] = False
    return out


def _skeleton_segments(points: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Pairs of 8-neighbouring centre-line points (row, col in TRACE_SCALE steps), each once."""
    k = TRACE_SCALE
    on = {(round(y * k), round(x * k)) for y, x in points.tolist()}
    segments = []
    for y, x in on:
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if (y + dy, x + dx) in on:
                # Skip a diagonal when an L through a 4-neighbour already joins the two pixels.
                if dy and dx and ((y + dy, x) in on or (y, x + dx) in on):
                    continue
                segments.append(((y / k, x / k), ((y + dy) / k, (x + dx) / k)))
    return segments


def _placement(rng: np.random.Generator, shape: tuple[float, float], height: float):
    """(scale, top, left) that puts a (h, w) shape `height` tall somewhere on the canvas."""
    h, w = shape
    scale = height / h
    if w * scale > CANVAS - 8:
        scale = (CANVAS - 8) / w
    top = rng.uniform(4, CANVAS - 4 - h * scale)
    left = rng.uniform(4, CANVAS - 4 - w * scale)
    return scale, top, left


def _height(rng: np.random.Generator, brush: float) -> float:
    """A drawing height for a brush: any size, but a 40-pixel marker is not used for tiny digits."""
    return float(rng.uniform(max(70.0, 5.0 * brush), 262.0))


def _brush(rng: np.random.Generator, kind: str) -> int:
    lo, hi = BRUSHES[kind]
    return int(rng.integers(lo, hi + 1))


def trace_optdigit(
    bitmap: np.ndarray,
    rng: np.random.Generator,
    brush_kind: str,
    points: np.ndarray | None = None,
) -> np.ndarray:
    """An optdigits bitmap as a canvas drawing: its centre line drawn with a round brush."""
    ys, xs = np.nonzero(bitmap)
    crop = bitmap[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    if points is None:
        points = centre_line(crop)
    brush = _brush(rng, brush_kind)
    scale, top, left = _placement(rng, crop.shape, _height(rng, brush))
    lines = [
        [(left + (x + 0.5) * scale, top + (y + 0.5) * scale) for y, x in seg]
        for seg in _skeleton_segments(points)
    ]
    if not lines:
        lines = [[(left + scale * 0.5, top + scale * 0.5)] * 2]
    return render_strokes(lines, brush)


def scan_optdigit(bitmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An optdigits bitmap smoothly enlarged onto the canvas, its ink eroded or dilated."""
    ys, xs = np.nonzero(bitmap)
    crop = bitmap[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    scale, top, left = _placement(rng, crop.shape, float(rng.uniform(70, 262)))
    h, w = (max(2, round(n * scale)) for n in crop.shape)
    big = np.asarray(Image.fromarray(crop, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    big = ndimage.gaussian_filter(big, sigma=scale * 0.4) > 0.5
    # The scanned pens are about a quarter of the digit's height wide: thin them or thicken them.
    radius = int(round(rng.uniform(-0.6, 0.15) * 0.25 * h / 2))
    if radius > 0:
        big = ndimage.binary_dilation(big, _disk(radius))
    elif radius < 0:
        thinner = ndimage.binary_erosion(big, _disk(-radius))
        big = thinner if thinner.sum() > 0.15 * big.sum() else big
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    t, lft = int(top), int(left)
    h, w = min(h, CANVAS - t), min(w, CANVAS - lft)
    canvas[t : t + h, lft : lft + w] = big[:h, :w] * 255
    return _rgba(canvas)


def upload_optdigit(bitmap: np.ndarray) -> np.ndarray:
    """The 32x32 bitmap itself as an uploaded scan: dark ink on white paper, uint8 gray."""
    return np.where(bitmap, 0, 255).astype(np.uint8)


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius + 0.5


# ----- stroke drawings ---------------------------------------------------------------------------


def _rgba(gray: np.ndarray) -> np.ndarray:
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def render_strokes(lines: list[list[tuple[float, float]]], brush: float) -> np.ndarray:
    """Polylines in canvas pixels drawn as the canvas draws them: round brush, antialiased."""
    s = SUPERSAMPLE
    img = Image.new("L", (CANVAS * s, CANVAS * s), 0)
    pen = ImageDraw.Draw(img)
    width = max(1, int(round(brush * s)))
    r = width / 2.0
    for line in lines:
        pts = [(x * s, y * s) for x, y in line]
        if len(pts) > 1:
            pen.line(pts, fill=255, width=width, joint="curve")
        for x, y in (pts[0], pts[-1]) if len(pts) > 1 else pts:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    gray = np.asarray(img.reduce(s), dtype=np.uint8)
    return _rgba(gray)


def hand_strokes(
    strokes: list[Stroke],
    rng: np.random.Generator,
    brush_kind: str,
    jitter: float = 0.03,
    smooth: bool = True,
    aspect: tuple[float, float] = (0.45, 0.8),
    slant: float = 0.25,
) -> np.ndarray:
    """Strokes in a unit box (x right, y down) drawn like a hand: jittered, slanted, at any size."""
    return render_strokes(*hand_lines(strokes, rng, brush_kind, jitter, smooth, aspect, slant))


def hand_lines(
    strokes: list[Stroke],
    rng: np.random.Generator,
    brush_kind: str,
    jitter: float = 0.03,
    smooth: bool = True,
    aspect: tuple[float, float] = (0.45, 0.8),
    slant: float = 0.25,
) -> tuple[list[Stroke], int]:
    """(polylines in canvas pixels, brush width) of hand_strokes: the pen's path, to replay it."""
    brush = _brush(rng, brush_kind)
    height = _height(rng, brush)
    width = height * rng.uniform(*aspect)
    shear = rng.uniform(-slant, slant)
    rotation = math.radians(rng.uniform(-8, 8))
    pts = [np.asarray(s, dtype=np.float64) + rng.normal(0, jitter, (len(s), 2)) for s in strokes]
    # Width, slant and a small rotation, about the box's centre.
    c, s_ = math.cos(rotation), math.sin(rotation)
    shaped = []
    for p in pts:
        x = (p[:, 0] - 0.5 + shear * (0.5 - p[:, 1])) * width
        y = (p[:, 1] - 0.5) * height
        shaped.append(np.stack([c * x - s_ * y, s_ * x + c * y], axis=1))
    allp = np.vstack(shaped)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = np.maximum(hi - lo, 1.0)
    fit = min(1.0, (CANVAS - 8 - brush) / span.max())
    span = span * fit
    low = 4 + brush / 2
    off = np.array([rng.uniform(low, max(low, CANVAS - low - extent)) for extent in span])
    lines = []
    for p in shaped:
        q = (p - lo) * fit + off
        if smooth:
            q = chaikin(q)
        lines.append([(float(x), float(y)) for x, y in q])
    return lines, brush


# Hand-written styles of each digit in a unit box (x right, y down), as people in different
# countries write them; several strokes where the pen is lifted.
DIGIT_STYLES: dict[int, list[list[Stroke]]] = {
    0: [
        [[(0.5, 0), (0.15, 0.2), (0.05, 0.6), (0.35, 1), (0.8, 0.85), (0.95, 0.35), (0.6, 0), (0.45, 0.05)]],
        [[(0.6, 0.05), (0.2, 0.3), (0.25, 0.9), (0.7, 0.95), (0.85, 0.4), (0.55, 0.02)]],
        [[(0.55, 0.08), (0.25, 0.1), (0.05, 0.5), (0.3, 0.95), (0.75, 0.9), (0.95, 0.45), (0.7, 0.05), (0.3, 0.15)]],
    ],
    1: [
        [[(0.5, 0), (0.5, 1)]],
        [[(0.2, 0.25), (0.6, 0), (0.55, 1)]],
        [[(0.1, 0.35), (0.65, 0), (0.6, 1)]],
        [[(0.35, 0.15), (0.6, 0), (0.6, 1)], [(0.3, 1), (0.9, 1)]],
        [[(0.6, 0), (0.4, 1)]],
    ],
    2: [
        [[(0.1, 0.25), (0.5, 0), (0.9, 0.25), (0.1, 1), (0.95, 1)]],
        [[(0.15, 0.2), (0.6, 0.02), (0.8, 0.35), (0.2, 0.95), (0.9, 0.9)]],
        [[(0.1, 0.3), (0.45, 0), (0.85, 0.2), (0.6, 0.6), (0.1, 1), (0.35, 0.85), (0.5, 0.95), (0.95, 1)]],
        [[(0.1, 0.15), (0.5, 0), (0.85, 0.2), (0.8, 0.45), (0.1, 1), (0.9, 1)]],
    ],
    3: [
        [[(0.1, 0.1), (0.8, 0.05), (0.4, 0.45), (0.9, 0.7), (0.5, 1), (0.1, 0.85)]],
        [[(0.15, 0.05), (0.85, 0.2), (0.45, 0.5), (0.85, 0.8), (0.15, 0.95)]],
        [[(0.1, 0.15), (0.5, 0), (0.85, 0.2), (0.4, 0.48), (0.9, 0.7), (0.6, 1), (0.1, 0.9)]],
        [[(0.1, 0), (0.85, 0), (0.35, 0.4), (0.85, 0.6), (0.75, 0.95), (0.1, 0.9)]],
    ],
    4: [
        [[(0.6, 0), (0.1, 0.65), (0.9, 0.65)], [(0.65, 0.3), (0.65, 1)]],
        [[(0.2, 0), (0.15, 0.55), (0.85, 0.55)], [(0.75, 0), (0.75, 1)]],
        [[(0.25, 0), (0.1, 0.55), (0.9, 0.55)], [(0.7, 0.2), (0.7, 1)]],
        [[(0.7, 1), (0.7, 0), (0.05, 0.65), (0.95, 0.65)]],
    ],
    5: [
        [[(0.85, 0), (0.2, 0), (0.15, 0.45), (0.7, 0.45), (0.85, 0.75), (0.5, 1), (0.1, 0.9)]],
        [[(0.2, 0.05), (0.15, 0.45), (0.75, 0.5), (0.7, 0.95), (0.15, 0.9)], [(0.2, 0.05), (0.85, 0.05)]],
        [[(0.25, 0), (0.2, 0.4), (0.6, 0.35), (0.9, 0.65), (0.6, 1), (0.1, 0.85)], [(0.25, 0), (0.9, 0)]],
    ],
    6: [
        [[(0.7, 0), (0.2, 0.5), (0.2, 0.9), (0.6, 1), (0.8, 0.7), (0.5, 0.5), (0.2, 0.7)]],
        [[(0.6, 0), (0.3, 0.3), (0.2, 0.8), (0.5, 1), (0.8, 0.8), (0.6, 0.55), (0.25, 0.65)]],
        [[(0.8, 0.05), (0.4, 0.1), (0.15, 0.6), (0.35, 1), (0.8, 0.85), (0.7, 0.55), (0.2, 0.6)]],
    ],
    7: [
        [[(0.1, 0), (0.9, 0), (0.35, 1)]],
        [[(0.1, 0.05), (0.85, 0.05), (0.5, 0.55), (0.45, 1)]],
        [[(0.05, 0.15), (0.1, 0), (0.9, 0), (0.4, 1)], [(0.3, 0.5), (0.8, 0.5)]],
        [[(0.1, 0), (0.9, 0.02), (0.45, 1)], [(0.35, 0.55), (0.85, 0.5)]],
    ],
    8: [
        [[(0.8, 0.1), (0.5, 0), (0.2, 0.2), (0.8, 0.75), (0.5, 1), (0.2, 0.75), (0.8, 0.25), (0.8, 0.1)]],
        [[(0.5, 0.5), (0.2, 0.25), (0.5, 0), (0.8, 0.25), (0.5, 0.5), (0.2, 0.75), (0.5, 1), (0.8, 0.75), (0.5, 0.5)]],
        [[(0.5, 0.45), (0.25, 0.3), (0.3, 0.05), (0.7, 0.05), (0.75, 0.3), (0.5, 0.45)], [(0.5, 0.45), (0.15, 0.7), (0.4, 1), (0.85, 0.8), (0.5, 0.45)]],
    ],
    9: [
        [[(0.8, 0.3), (0.5, 0), (0.2, 0.3), (0.5, 0.5), (0.8, 0.3), (0.75, 1)]],
        [[(0.75, 0.15), (0.45, 0.02), (0.2, 0.25), (0.45, 0.45), (0.75, 0.2), (0.6, 1)]],
        [[(0.8, 0.1), (0.4, 0), (0.15, 0.25), (0.4, 0.45), (0.8, 0.3)], [(0.8, 0.05), (0.8, 1)]],
        [[(0.8, 0.25), (0.5, 0.02), (0.2, 0.2), (0.35, 0.45), (0.8, 0.35), (0.7, 0.8), (0.4, 1), (0.15, 0.9)]],
    ],
}  # fmt: skip

# Strokes of letters a digit cannot be mistaken for, and the same for lower case, as a hand
# prints them (used when no stroke font is installed, and as one more hand when one is).
LETTER_STYLES: dict[str, list[Stroke]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(0.9, 0), (0.1, 0), (0.1, 1), (0.9, 1)], [(0.1, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0), (0.1, 0), (0.1, 1)], [(0.1, 0.5), (0.7, 0.5)]],
    "H": [[(0.1, 0), (0.1, 1)], [(0.9, 0), (0.9, 1)], [(0.1, 0.5), (0.9, 0.5)]],
    "K": [[(0.1, 0), (0.1, 1)], [(0.9, 0), (0.1, 0.6)], [(0.35, 0.45), (0.9, 1)]],
    "M": [[(0, 1), (0.1, 0), (0.5, 0.6), (0.9, 0), (1, 1)]],
    "N": [[(0.1, 1), (0.1, 0), (0.9, 1), (0.9, 0)]],
    "R": [[(0.1, 1), (0.1, 0), (0.7, 0.05), (0.8, 0.3), (0.1, 0.5), (0.9, 1)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1, 0)]],
    "X": [[(0.05, 0), (0.95, 1)], [(0.95, 0), (0.05, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "h": [[(0.15, 0), (0.15, 1)], [(0.15, 0.6), (0.5, 0.4), (0.85, 0.6), (0.85, 1)]],
    "k": [[(0.15, 0), (0.15, 1)], [(0.8, 0.4), (0.15, 0.75), (0.85, 1)]],
    "m": [[(0.05, 1), (0.05, 0.4), (0.3, 0.35), (0.5, 0.5), (0.5, 1)], [(0.5, 0.5), (0.75, 0.35), (0.95, 0.5), (0.95, 1)]],
    "n": [[(0.15, 1), (0.15, 0.4), (0.5, 0.35), (0.85, 0.5), (0.85, 1)]],
    "r": [[(0.2, 1), (0.2, 0.4)], [(0.2, 0.6), (0.5, 0.38), (0.85, 0.42)]],
    "w": [[(0, 0.4), (0.25, 1), (0.5, 0.55), (0.75, 1), (1, 0.4)]],
    "x": [[(0.1, 0.4), (0.9, 1)], [(0.9, 0.4), (0.1, 1)]],
    "e": [[(0.15, 0.65), (0.85, 0.65), (0.7, 0.4), (0.4, 0.38), (0.15, 0.65), (0.4, 1), (0.85, 0.9)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "t": [[(0.45, 0), (0.45, 0.9), (0.7, 1)], [(0.1, 0.35), (0.85, 0.35)]],
}  # fmt: skip


def hershey_font(path: str | Path) -> dict[str, list[Stroke]]:
    """The glyphs of one Hershey .jhf font (one line per ASCII character from space) as strokes."""
    glyphs: dict[str, list[Stroke]] = {}
    for index, line in enumerate(Path(path).read_text(encoding="latin-1").splitlines()):
        body = line[10:]
        strokes: list[Stroke] = []
        current: Stroke = []
        for k in range(0, len(body) - 1, 2):
            pair = body[k : k + 2]
            if pair == " R":
                if current:
                    strokes.append(current)
                current = []
                continue
            current.append((ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")))
        if current:
            strokes.append(current)
        if strokes:
            glyphs[chr(32 + index)] = strokes
    return glyphs


def _unit_box(strokes: list[Stroke]) -> list[Stroke]:
    """Strokes scaled into a unit box by their longer side, aspect kept, centred."""
    pts = np.vstack([np.asarray(s, dtype=np.float64) for s in strokes])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(float((hi - lo).max()), 1e-6)
    pad = (side - (hi - lo)) / 2
    return [[tuple(((np.asarray(p) - lo + pad) / side).tolist()) for p in s] for s in strokes]


def font_strokes(chars: str) -> list[tuple[str, str, list[Stroke]]]:
    """(font, character, unit-box strokes) for each character in each installed Hershey font."""
    out = []
    for font in HERSHEY_FONTS:
        path = HERSHEY_DIR / f"{font}.jhf"
        if not path.is_file():
            continue
        glyphs = hershey_font(path)
        for ch in chars:
            if ch in glyphs:
                out.append((font, ch, _unit_box(glyphs[ch])))
    return out


def ttf_glyph(
    font_path: str, text: str, rng: np.random.Generator, brush_kind: str
) -> np.ndarray | None:
    """Text from a TTF font drawn white on the black canvas at a random size and place."""
    height = _height(rng, BRUSHES[brush_kind][0])
    try:
        font = ImageFont.truetype(font_path, int(height))
    except OSError:
        return None
    img = Image.new("L", (CANVAS * 3, CANVAS * 3), 0)
    pen = ImageDraw.Draw(img)
    # The outline's width thickens a font's pen towards the brush (thin fonts get thicker).
    extra = {"thin": 0, "medium": 2, "thick": 5}[brush_kind]
    pen.text((CANVAS, CANVAS), text, fill=255, font=font, stroke_width=extra, stroke_fill=255)
    arr = np.asarray(img)
    ys, xs = np.nonzero(arr > 0)
    if ys.size == 0:
        return None
    crop = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    fit = min(1.0, (CANVAS - 8) / max(h, w))
    if fit < 1.0:
        crop = np.asarray(
            Image.fromarray(crop).resize(
                (max(1, int(w * fit)), max(1, int(h * fit))), Image.Resampling.BOX
            )
        )
        h, w = crop.shape
    top = int(rng.uniform(4, CANVAS - 4 - h))
    left = int(rng.uniform(4, CANVAS - 4 - w))
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    canvas[top : top + h, left : left + w] = crop
    return _rgba(canvas)


# ----- scribbles and shapes -----------------------------------------------------------------------


def scribble(kind: str, rng: np.random.Generator) -> list[Stroke]:
    """Unit-box strokes of one scribble or shape that is no digit."""
    if kind == "random walk":
        n = int(rng.integers(15, 40))
        steps = rng.normal(0, 1, (n, 2))
        pts = np.cumsum(steps, axis=0)
        return [[tuple(p) for p in pts.tolist()]]
    if kind == "zigzag":
        n = int(rng.integers(4, 9))
        return [[(i / n, float(i % 2)) for i in range(n + 1)]]
    if kind == "spiral":
        t = np.linspace(0, rng.uniform(3, 5) * math.pi, 60)
        r = t / t.max()
        return [
            list(
                zip(
                    (0.5 + 0.5 * r * np.cos(t)).tolist(),
                    (0.5 + 0.5 * r * np.sin(t)).tolist(),
                    strict=True,
                )
            )
        ]
    if kind == "circle with lines":
        t = np.linspace(0, 2 * math.pi, 40)
        circle = list(
            zip((0.5 + 0.4 * np.cos(t)).tolist(), (0.5 + 0.4 * np.sin(t)).tolist(), strict=True)
        )
        return [circle, [(0, 0.5), (1, 0.5)], [(0.5, 0), (0.5, 1)]]
    if kind == "crossed box":
        return [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)], [(0, 0), (1, 1)], [(1, 0), (0, 1)]]
    if kind == "triangle":
        return [[(0.5, 0), (1, 0.9), (0, 0.9), (0.5, 0)]]
    if kind == "square":
        return [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]]
    if kind == "star":
        pts = [
            (0.5 + 0.5 * math.sin(a), 0.5 - 0.5 * math.cos(a))
            for a in np.arange(6) * 4 * math.pi / 5
        ]
        return [pts]
    if kind == "hatching":
        n = int(rng.integers(3, 7))
        return [[(0, i / n), (1, i / n + 0.2)] for i in range(n)]
    if kind == "wave":
        t = np.linspace(0, rng.uniform(2, 4) * 2 * math.pi, 60)
        return [list(zip((t / t.max()).tolist(), (0.5 + 0.25 * np.sin(t)).tolist(), strict=True))]
    if kind == "smiley":
        t = np.linspace(0, 2 * math.pi, 40)
        face = list(
            zip((0.5 + 0.5 * np.cos(t)).tolist(), (0.5 + 0.5 * np.sin(t)).tolist(), strict=True)
        )
        s = np.linspace(0.2 * math.pi, 0.8 * math.pi, 12)
        mouth = list(
            zip((0.5 + 0.3 * np.cos(s)).tolist(), (0.5 + 0.3 * np.sin(s)).tolist(), strict=True)
        )
        return [face, mouth, [(0.35, 0.3), (0.36, 0.32)], [(0.65, 0.3), (0.66, 0.32)]]
    if kind == "hash":
        return [
            [(0.3, 0), (0.2, 1)],
            [(0.75, 0), (0.65, 1)],
            [(0, 0.33), (1, 0.33)],
            [(0, 0.67), (1, 0.67)],
        ]
    if kind == "scrawl":
        n = int(rng.integers(6, 14))
        return [[tuple(p) for p in rng.uniform(0, 1, (n, 2)).tolist()]]
    raise ValueError(kind)


SCRIBBLES = (
    "random walk",
    "zigzag",
    "spiral",
    "circle with lines",
    "crossed box",
    "triangle",
    "square",
    "star",
    "hatching",
    "wave",
    "smiley",
    "hash",
    "scrawl",
)
ANGULAR = {"zigzag", "crossed box", "triangle", "square", "star", "hatching", "hash"}
"""Shapes drawn with sharp corners (a rounded square would be a 0)."""
WORDS = ("cat", "hey", "Max", "ok", "yes", "ANNA", "dog", "kw", "Hi", "xyz")


# ----- the sets -----------------------------------------------------------------------------------


def optdigits_set(
    bitmaps: np.ndarray, labels: np.ndarray, seed: int, name: str
) -> Iterator[Drawing]:
    """Each real digit traced with a thin, a medium and a thick brush, scanned once (enlarged,
    eroded or dilated) onto the canvas, and uploaded as its own bitmap."""
    rng = np.random.default_rng(seed)
    for bitmap, label in zip(bitmaps, labels, strict=True):
        ys, xs = np.nonzero(bitmap)
        points = centre_line(bitmap[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
        for kind in BRUSHES:
            image = trace_optdigit(bitmap, rng, kind, points)
            yield Drawing(image, int(label), f"{name} traced {kind}")
        yield Drawing(scan_optdigit(bitmap, rng), int(label), f"{name} scanned")
        yield Drawing(upload_optdigit(bitmap), int(label), f"{name} uploaded")


def stroke_digit_set(per_style: int, seed: int) -> Iterator[Drawing]:
    """Hand styles of every digit and Hershey font digits, each drawn with every brush."""
    rng = np.random.default_rng(seed)
    for digit, styles in DIGIT_STYLES.items():
        for strokes in styles:
            for i in range(per_style):
                kind = list(BRUSHES)[i % 3]
                image = hand_strokes(
                    strokes, rng, kind, aspect=(0.3, 0.5) if digit == 1 else (0.45, 0.8)
                )
                yield Drawing(image, digit, f"hand digits {kind}")
    for font, ch, strokes in font_strokes("0123456789"):
        for i in range(max(1, per_style // 2)):
            kind = list(BRUSHES)[i % 3]
            image = hand_strokes(strokes, rng, kind, jitter=0.015, aspect=(0.9, 1.1), slant=0.15)
            yield Drawing(image, int(ch), f"font digits {font}")


def letter_set(per_glyph: int, seed: int) -> Iterator[Drawing]:
    """Letters that look like no digit, from stroke fonts, built-in hands and TTF fonts, and words."""
    rng = np.random.default_rng(seed)
    letters = "".join(
        c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in LOOKALIKES
    )
    for strokes in LETTER_STYLES.values():
        for i in range(per_glyph * 2):
            kind = list(BRUSHES)[i % 3]
            yield Drawing(hand_strokes(strokes, rng, kind, aspect=(0.6, 1.0)), -1, "letters hand")
    for font, _ch, strokes in font_strokes(letters):
        for i in range(per_glyph):
            kind = list(BRUSHES)[i % 3]
            image = hand_strokes(strokes, rng, kind, jitter=0.015, aspect=(0.9, 1.1), slant=0.15)
            yield Drawing(image, -1, f"letters {font}")
    for path in TTF_FONTS:
        if not Path(path).is_file():
            continue
        for ch in letters:
            for i in range(per_glyph):
                image = ttf_glyph(path, ch, rng, list(BRUSHES)[i % 3])
                if image is not None:
                    yield Drawing(image, -1, f"letters {Path(path).stem}")
        for word in WORDS:
            image = ttf_glyph(path, word, rng, "medium")
            if image is not None:
                yield Drawing(image, -1, "words")


def scribble_set(per_kind: int, seed: int) -> Iterator[Drawing]:
    """Scribbles and shapes, each drawn with every brush at random sizes and places."""
    rng = np.random.default_rng(seed)
    for kind in SCRIBBLES:
        for i in range(per_kind):
            strokes = _unit_box(scribble(kind, rng))
            brush = list(BRUSHES)[i % 3]
            image = hand_strokes(
                strokes,
                rng,
                brush,
                jitter=0.01,
                smooth=kind not in ANGULAR,
                aspect=(0.7, 1.3),
                slant=0.1,
            )
            yield Drawing(image, -1, f"scribbles {kind}")


# ----- the canvas's own brush ------------------------------------------------------------------


def pointer_path(points: Stroke, steps: int) -> Stroke:
    """The pointer positions a stroke through `points` sends: `steps` straight moves per leg.

    This is how Playwright's `mouse.move(x, y, steps=n)` moves (linear, the end point included),
    so the browser test and the offline renderer start from the same positions.
    """
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        out += [
            (x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(1, steps + 1)
        ]
    return out


def fabric_curve(points: Stroke, decimate: float = 0.4, per_curve: int = 8) -> Stroke:
    """The polyline the canvas's pencil strokes for these pointer positions (Fabric.js PencilBrush).

    The brush drops positions closer than `decimate` pixels to the last one kept, then draws
    quadratic curves through the midpoints of successive positions, each position their control
    point, and a straight line to the last one; `per_curve` points per curve flatten them.
    """
    kept = [points[0]]
    for p in points[1:-1]:
        if (p[0] - kept[-1][0]) ** 2 + (p[1] - kept[-1][1]) ** 2 >= decimate**2:
            kept.append(p)
    if len(points) > 1:
        kept.append(points[-1])
    if len(kept) < 3:
        return kept if len(kept) > 1 else kept * 2
    pts = np.asarray(kept, dtype=np.float64)
    out = [tuple(pts[0])]
    start = pts[0]
    t = np.linspace(0.0, 1.0, per_curve + 1)[1:, None]
    for i in range(len(pts) - 1):
        control, end = pts[i], (pts[i] + pts[i + 1]) / 2
        if np.array_equal(pts[i], pts[i + 1]):
            continue
        curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        out += [tuple(p) for p in curve]
        start = end
    out.append(tuple(pts[-1]))
    return [(float(x), float(y)) for x, y in out]


def render_canvas(strokes: list[Stroke], brush: float, size: int = CANVAS) -> np.ndarray:
    """Pointer paths drawn as streamlit-drawable-canvas draws them: its pencil's curves, a round
    brush `brush` pixels wide with round caps and joins, antialiased by coverage, white on black.

    Coverage is the analytic estimate a 2D canvas uses: a pixel whose centre lies d pixels from
    the stroke's centre line is covered by clip(brush / 2 - d + 0.5, 0, 1).
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    nearest = np.full((size, size), np.inf, np.float32)
    for stroke in strokes:
        line = np.asarray(fabric_curve(stroke), dtype=np.float32)
        a, b = line[:-1], line[1:]
        for (ax, ay), (bx, by) in zip(a, b, strict=True):
            dx, dy = bx - ax, by - ay
            # Only the pixels near this segment can be closer to it than to what was seen so far.
            r = brush / 2 + 2
            y0, y1 = max(0, int(min(ay, by) - r)), min(size, int(max(ay, by) + r) + 1)
            x0, x1 = max(0, int(min(ax, bx) - r)), min(size, int(max(ax, bx) + r) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            px, py = xs[y0:y1, x0:x1] - ax, ys[y0:y1, x0:x1] - ay
            length = dx * dx + dy * dy
            u = np.clip((px * dx + py * dy) / length, 0, 1) if length > 0 else 0.0
            d = np.hypot(px - u * dx, py - u * dy)
            np.minimum(nearest[y0:y1, x0:x1], d, out=nearest[y0:y1, x0:x1])
    coverage = np.clip(brush / 2 - nearest + 0.5, 0.0, 1.0)
    return _rgba((coverage * 255 + 0.5).astype(np.uint8))


@dataclass(frozen=True)
class Replay:
    """Pen strokes to replay on the real canvas: waypoints in canvas pixels and the brush."""

    strokes: list[Stroke]
    brush: int
    label: int
    name: str

    def starts_under_toolbar(self) -> bool:
        """Whether a stroke starts in the canvas's top-right strip, where its toolbar sits."""
        return any(s[0][0] >= CANVAS / 2 and s[0][1] < 30 for s in self.strokes)


REPLAY_BRUSHES = (8, 14, 20, 28, 36)
"""The brush widths replays use (a few, so a browser sets its slider a few times)."""


def canvas_replays(count: int, seed: int = 0) -> list[Replay]:
    """`count` hand-style digits (every style of DIGIT_STYLES in turn) as strokes to replay.

    Every third one is moved to the top right corner, so its strokes start where the canvas's
    toolbar sits; brushes cycle through REPLAY_BRUSHES.
    """
    rng = np.random.default_rng(seed)
    styles = [(d, k, s) for d, group in DIGIT_STYLES.items() for k, s in enumerate(group)]
    out = []
    for i in range(count):
        digit, k, strokes = styles[i % len(styles)]
        brush = REPLAY_BRUSHES[(i // len(styles) + i) % len(REPLAY_BRUSHES)]
        kind = next(name for name, (lo, hi) in BRUSHES.items() if brush <= hi)
        aspect = (0.3, 0.5) if digit == 1 else (0.45, 0.8)
        lines, _ = hand_lines(strokes, rng, kind, aspect=aspect)
        if i % 3 == 2:
            # Into the top right corner: the highest point a brush's half-width from the edge.
            pts = np.vstack([np.asarray(line) for line in lines])
            dx = CANVAS - 1 - brush / 2 - pts[:, 0].max()
            dy = brush / 2 + 1 - pts[:, 1].min()
            lines = [[(x + dx, y + dy) for x, y in line] for line in lines]
        # At most about 24 waypoints a stroke (its ends kept): the pointer moves in between.
        lines = [
            [(float(x), float(y)) for x, y in [*line[: -1 : max(1, len(line) // 24)], line[-1]]]
            for line in lines
        ]
        out.append(Replay(lines, brush, digit, f"{digit} style {k} brush {brush}"))
    return out
