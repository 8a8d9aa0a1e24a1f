"""Pen strokes drawn like a hand, for training: letters that are no digit, random scrawls and
shapes, and the strokes people in other countries add to a 1 and a 7.

MNIST's writers were American: their 1 is one stroke and their 7 has no bar. Most of Europe writes
a 1 with a long lead-in stroke (and often a foot) and crosses its 7s, and a network that has never
seen them reads such a 1 as a 7 and such a 7 as a 2. `restyle` adds those strokes to real MNIST 1s
and 7s, in the digit's own stroke width, so the network learns them as the same digit.

Letters are capitals and small letters, printed and joined-up, from a table of strokes in a unit box
(x right, y down), leaving out the ones that look like a digit (O, I, l, S, Z, B, G, q and the like). Each is
drawn jittered, slanted, stretched and with a random pen width, then fitted like MNIST's digits.
Everything is seeded: the same call gives the same images on every machine.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from core.drawing import fit_like_mnist

Stroke = list[tuple[float, float]]

RENDER = 84
"""Side of the square a letter or scrawl is drawn in before it is fitted into 28x28."""
SUPER = 4
"""Strokes added to a 28x28 digit are drawn at this many times its size, then shrunk
(antialiased)."""
INK = 128
"""Pixels above this (of 255) are a digit's ink when measuring its strokes."""

# Letters that cannot be taken for a digit, printed and joined-up (each has one or more ways of
# writing it), as strokes in a unit box (x right, y down).
LETTERS: dict[str, list[list[Stroke]]] = {
    "A": [[[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.25, 0.62), (0.75, 0.62)]]],
    "C": [[[(0.9, 0.15), (0.55, 0.0), (0.15, 0.2), (0.05, 0.55), (0.25, 0.92), (0.6, 1.0), (0.92, 0.85)]]],
    "D": [[[(0.1, 0.0), (0.1, 1.0)], [(0.1, 0.0), (0.6, 0.08), (0.9, 0.45), (0.65, 0.92), (0.1, 1.0)]]],
    "E": [[[(0.85, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0)], [(0.1, 0.5), (0.65, 0.5)]]],
    "F": [[[(0.85, 0.0), (0.1, 0.0), (0.1, 1.0)], [(0.1, 0.48), (0.6, 0.48)]]],
    "H": [[[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.9, 1.0)], [(0.1, 0.5), (0.9, 0.5)]]],
    "K": [[[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.15, 0.55), (0.9, 1.0)]]],
    "L": [[[(0.15, 0.0), (0.15, 1.0), (0.85, 1.0)]]],
    "M": [[[(0.0, 1.0), (0.08, 0.0), (0.5, 0.65), (0.92, 0.0), (1.0, 1.0)]]],
    "N": [[[(0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0)]]],
    "P": [[[(0.15, 1.0), (0.15, 0.0), (0.7, 0.05), (0.85, 0.25), (0.65, 0.48), (0.15, 0.5)]]],
    "R": [[[(0.15, 1.0), (0.15, 0.0), (0.7, 0.05), (0.85, 0.25), (0.65, 0.48), (0.15, 0.5), (0.9, 1.0)]]],
    "T": [[[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]]],
    "U": [[[(0.1, 0.0), (0.1, 0.7), (0.35, 1.0), (0.65, 1.0), (0.9, 0.7), (0.9, 0.0)]]],
    "V": [[[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]]],
    "W": [[[(0.0, 0.0), (0.22, 1.0), (0.5, 0.35), (0.78, 1.0), (1.0, 0.0)]]],
    "X": [[[(0.05, 0.0), (0.95, 1.0)], [(0.95, 0.0), (0.05, 1.0)]]],
    "Y": [[[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]]],
    "a": [[[(0.85, 0.45), (0.45, 0.35), (0.12, 0.7), (0.35, 1.0), (0.85, 0.75)], [(0.85, 0.35), (0.85, 1.0)]]],
    "c": [[[(0.85, 0.45), (0.45, 0.35), (0.12, 0.68), (0.4, 1.0), (0.88, 0.92)]]],
    "d": [[[(0.85, 0.45), (0.45, 0.35), (0.12, 0.7), (0.35, 1.0), (0.85, 0.75)], [(0.85, 0.0), (0.85, 1.0)]]],
    "e": [[[(0.12, 0.68), (0.88, 0.66), (0.7, 0.38), (0.38, 0.36), (0.12, 0.68), (0.4, 1.0), (0.88, 0.9)]]],
    "f": [[[(0.8, 0.05), (0.5, 0.0), (0.4, 0.2), (0.4, 1.0)], [(0.1, 0.42), (0.75, 0.42)]]],
    "h": [[[(0.15, 0.0), (0.15, 1.0)], [(0.15, 0.6), (0.5, 0.4), (0.85, 0.6), (0.85, 1.0)]]],
    "k": [[[(0.15, 0.0), (0.15, 1.0)], [(0.8, 0.4), (0.15, 0.75), (0.85, 1.0)]]],
    "m": [[[(0.05, 1.0), (0.05, 0.4)], [(0.05, 0.55), (0.3, 0.38), (0.5, 0.55), (0.5, 1.0)], [(0.5, 0.55), (0.75, 0.38), (0.95, 0.55), (0.95, 1.0)]]],
    "n": [[[(0.15, 1.0), (0.15, 0.4)], [(0.15, 0.55), (0.5, 0.38), (0.85, 0.55), (0.85, 1.0)]]],
    "p": [[[(0.15, 0.35), (0.15, 1.0)], [(0.15, 0.4), (0.6, 0.35), (0.85, 0.5), (0.6, 0.72), (0.15, 0.7)]]],
    "r": [[[(0.2, 1.0), (0.2, 0.4)], [(0.2, 0.6), (0.5, 0.38), (0.85, 0.42)]]],
    "t": [[[(0.45, 0.0), (0.45, 0.88), (0.75, 1.0)], [(0.1, 0.35), (0.85, 0.35)]]],
    "u": [[[(0.15, 0.35), (0.15, 0.85), (0.45, 1.0), (0.85, 0.8)], [(0.85, 0.35), (0.85, 1.0)]]],
    "v": [[[(0.05, 0.35), (0.5, 1.0), (0.95, 0.35)]]],
    "w": [[[(0.0, 0.35), (0.25, 1.0), (0.5, 0.55), (0.75, 1.0), (1.0, 0.35)]]],
    "x": [[[(0.1, 0.35), (0.9, 1.0)], [(0.9, 0.35), (0.1, 1.0)]]],
    "y": [[[(0.1, 0.35), (0.5, 0.8)], [(0.9, 0.35), (0.3, 1.35)]]],
    "&": [[[(0.9, 1.0), (0.2, 0.3), (0.45, 0.0), (0.65, 0.25), (0.1, 0.7), (0.35, 1.0), (0.85, 0.6)]]],
    "#": [[[(0.3, 0.0), (0.2, 1.0)], [(0.75, 0.0), (0.65, 1.0)], [(0.0, 0.33), (1.0, 0.33)], [(0.0, 0.67), (1.0, 0.67)]]],
    "?": [[[(0.15, 0.2), (0.5, 0.0), (0.85, 0.2), (0.5, 0.5), (0.5, 0.75)], [(0.5, 0.95), (0.5, 1.0)]]],
}  # fmt: skip
# More ways of writing them: joined-up and looped forms, as cursive hands and fonts write them.
_MORE: dict[str, list[list[Stroke]]] = {
    "A": [[[(0.05, 1.0), (0.35, 0.0), (0.65, 0.0), (0.95, 1.0)], [(0.2, 0.55), (0.8, 0.55)]]],
    "E": [[[(0.85, 0.1), (0.5, 0.0), (0.2, 0.2), (0.5, 0.48), (0.15, 0.7), (0.45, 1.0), (0.9, 0.9)]]],
    "F": [[[(0.2, 0.05), (0.9, 0.0)], [(0.5, 0.0), (0.4, 1.0)], [(0.2, 0.5), (0.7, 0.5)]]],
    "H": [[[(0.15, 0.0), (0.1, 1.0)], [(0.85, 0.0), (0.9, 1.0)], [(0.0, 0.55), (1.0, 0.45)]]],
    "J": [[[(0.2, 0.0), (0.9, 0.0)], [(0.6, 0.0), (0.6, 0.8), (0.4, 1.0), (0.1, 0.85)]],
          [[(0.75, 0.0), (0.75, 0.75), (0.5, 1.0), (0.2, 0.9), (0.1, 0.7)]]],
    "K": [[[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.2, 0.5)], [(0.2, 0.5), (0.9, 1.0)]]],
    "M": [[[(0.1, 1.0), (0.1, 0.0), (0.5, 0.55), (0.9, 0.0), (0.9, 1.0)]],
          [[(0.0, 1.0), (0.15, 0.1), (0.3, 0.0), (0.5, 0.6), (0.7, 0.0), (0.85, 0.1), (1.0, 1.0)]]],
    "N": [[[(0.1, 1.0), (0.15, 0.0), (0.85, 1.0), (0.9, 0.0)]]],
    "Q": [[[(0.5, 0.0), (0.15, 0.2), (0.05, 0.6), (0.35, 0.95), (0.75, 0.9), (0.95, 0.45), (0.7, 0.05), (0.5, 0.0)], [(0.55, 0.7), (1.0, 1.1)]]],
    "R": [[[(0.15, 1.0), (0.15, 0.0), (0.75, 0.08), (0.75, 0.42), (0.15, 0.5)], [(0.35, 0.5), (0.9, 1.0)]]],
    "T": [[[(0.05, 0.1), (0.5, 0.0), (0.95, 0.05)], [(0.5, 0.0), (0.45, 1.0)]]],
    "U": [[[(0.1, 0.0), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8), (0.9, 0.0), (0.9, 1.0)]]],
    "V": [[[(0.0, 0.1), (0.15, 0.0), (0.5, 1.0), (0.9, 0.05), (1.0, 0.1)]]],
    "W": [[[(0.0, 0.0), (0.15, 1.0), (0.5, 0.0), (0.85, 1.0), (1.0, 0.0)]]],
    "X": [[[(0.1, 0.1), (0.5, 0.45), (0.9, 1.0)], [(0.9, 0.0), (0.5, 0.5), (0.1, 0.95)]]],
    "Y": [[[(0.05, 0.0), (0.5, 0.55), (0.5, 1.0)], [(0.95, 0.0), (0.5, 0.55)]]],
    "a": [[[(0.2, 0.4), (0.5, 0.3), (0.8, 0.45), (0.8, 1.0)], [(0.8, 0.6), (0.3, 0.6), (0.15, 0.85), (0.4, 1.0), (0.8, 0.85)]],
          [[(0.8, 0.45), (0.45, 0.35), (0.1, 0.7), (0.35, 1.0), (0.75, 0.7), (0.8, 0.35), (0.8, 0.9), (1.0, 1.0)]]],
    "c": [[[(0.8, 0.35), (0.55, 0.3), (0.2, 0.5), (0.15, 0.8), (0.45, 1.0), (0.95, 0.85)]]],
    "d": [[[(0.8, 0.55), (0.45, 0.4), (0.1, 0.7), (0.4, 1.0), (0.8, 0.7), (0.85, 0.0), (0.8, 0.9), (1.0, 1.0)]]],
    "e": [[[(0.0, 0.9), (0.3, 0.75), (0.6, 0.5), (0.45, 0.3), (0.2, 0.55), (0.3, 0.95), (0.65, 1.0), (1.0, 0.8)]]],
    "f": [[[(0.9, 0.1), (0.6, 0.0), (0.45, 0.3), (0.45, 1.2), (0.3, 1.3)], [(0.15, 0.45), (0.8, 0.42)]]],
    "h": [[[(0.0, 0.5), (0.3, 0.2), (0.35, 0.0), (0.2, 0.1), (0.15, 1.0), (0.2, 0.7), (0.55, 0.45), (0.75, 0.6), (0.75, 1.0), (1.0, 0.9)]]],
    "i": [[[(0.5, 0.4), (0.5, 1.0)], [(0.5, 0.08), (0.5, 0.12)], [(0.2, 0.4), (0.5, 0.4)]],
          [[(0.1, 0.7), (0.45, 0.4), (0.45, 0.95), (0.9, 0.8)], [(0.45, 0.1), (0.47, 0.14)]]],
    "j": [[[(0.6, 0.4), (0.6, 1.1), (0.4, 1.3), (0.15, 1.15)], [(0.6, 0.08), (0.6, 0.13)]]],
    "k": [[[(0.15, 0.0), (0.15, 1.0)], [(0.15, 0.7), (0.6, 0.4), (0.75, 0.55), (0.3, 0.7), (0.85, 1.0)]]],
    "m": [[[(0.0, 0.45), (0.1, 0.35), (0.1, 1.0), (0.15, 0.5), (0.35, 0.35), (0.5, 0.5), (0.5, 1.0), (0.55, 0.5), (0.75, 0.35), (0.9, 0.5), (0.9, 1.0), (1.0, 0.95)]]],
    "n": [[[(0.0, 0.45), (0.15, 0.35), (0.15, 1.0), (0.2, 0.5), (0.5, 0.35), (0.8, 0.5), (0.8, 1.0), (1.0, 0.9)]]],
    "p": [[[(0.2, 0.35), (0.2, 1.35)], [(0.2, 0.5), (0.55, 0.35), (0.85, 0.6), (0.55, 0.95), (0.2, 0.85)]]],
    "r": [[[(0.1, 0.45), (0.25, 0.35), (0.25, 1.0), (0.3, 0.55), (0.6, 0.35), (0.9, 0.45)]]],
    "t": [[[(0.45, 0.0), (0.4, 0.85), (0.55, 1.0), (0.85, 0.9)], [(0.15, 0.35), (0.8, 0.3)]]],
    "u": [[[(0.0, 0.45), (0.15, 0.35), (0.15, 0.85), (0.4, 1.0), (0.8, 0.7), (0.8, 0.35), (0.8, 0.9), (1.0, 1.0)]]],
    "v": [[[(0.0, 0.45), (0.15, 0.35), (0.45, 1.0), (0.8, 0.35), (1.0, 0.3)]]],
    "w": [[[(0.0, 0.35), (0.2, 1.0), (0.5, 0.4), (0.8, 1.0), (1.0, 0.35)]],
          [[(0.0, 0.45), (0.1, 0.35), (0.15, 0.85), (0.35, 1.0), (0.5, 0.6), (0.65, 1.0), (0.85, 0.85), (0.9, 0.35)]]],
    "x": [[[(0.0, 0.45), (0.2, 0.35), (0.8, 1.0), (1.0, 0.9)], [(0.85, 0.35), (0.15, 1.0)]]],
    "y": [[[(0.1, 0.35), (0.15, 0.8), (0.4, 0.95), (0.75, 0.75)], [(0.8, 0.35), (0.75, 1.2), (0.5, 1.35), (0.2, 1.2)]],
          [[(0.1, 0.35), (0.5, 0.9)], [(0.9, 0.35), (0.5, 0.9), (0.45, 1.35)]]],
}  # fmt: skip
for _name, _ways in _MORE.items():
    LETTERS.setdefault(_name, []).extend(_ways)


def chaikin(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """A polyline with its corners cut (Chaikin): how a hand rounds a drawn path."""
    for _ in range(rounds):
        if len(points) < 3:
            return points
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        inner = np.empty((2 * len(q), 2))
        inner[0::2], inner[1::2] = q, r
        points = np.vstack([points[:1], inner, points[-1:]])
    return points


def _draw(lines: list[np.ndarray], width: float, size: int) -> np.ndarray:
    """Polylines (pixel coordinates) drawn with a round pen of the given width on a black square."""
    img = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(img)
    w = max(1, int(round(width)))
    r = w / 2.0
    for line in lines:
        pts = [(float(x), float(y)) for x, y in line]
        if len(pts) > 1:
            pen.line(pts, fill=255, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img, np.uint8)


def hand_drawn(strokes: list[Stroke], rng: np.random.Generator, smooth: bool = True) -> np.ndarray:
    """Strokes in a unit box drawn like a hand: jittered, slanted, stretched, slightly turned, with
    a pen between thin and thick; uint8 (RENDER, RENDER), white on black, ink anywhere inside."""
    aspect = rng.uniform(0.6, 1.15)
    shear = rng.uniform(-0.3, 0.3)
    turn = math.radians(rng.uniform(-10, 10))
    c, s = math.cos(turn), math.sin(turn)
    shaped = []
    for stroke in strokes:
        p = np.asarray(stroke, np.float64) + rng.normal(0.0, 0.025, (len(stroke), 2))
        x = (p[:, 0] - 0.5 + shear * (0.5 - p[:, 1])) * aspect
        y = p[:, 1] - 0.5
        q = np.stack([c * x - s * y, s * x + c * y], axis=1)
        shaped.append(chaikin(q) if smooth else q)
    allp = np.vstack(shaped)
    lo, span = allp.min(axis=0), max(float(np.ptp(allp, axis=0).max()), 1e-6)
    # The pen, as a share of the drawing's size: 4% (a fine pen) to 16% (a marker).
    width = RENDER * 0.7 * rng.uniform(0.04, 0.16)
    scale = (RENDER - 2 * width - 4) / span
    lines = [(p - lo) * scale + width + 2 for p in shaped]
    return _draw(lines, width, RENDER)


def letter(rng: np.random.Generator) -> np.ndarray:
    """A random letter (or &, #, ?), in one of its ways of writing, drawn by hand."""
    ways = list(LETTERS.values())[int(rng.integers(len(LETTERS)))]
    return hand_drawn(ways[int(rng.integers(len(ways)))], rng)


def scrawl(rng: np.random.Generator) -> np.ndarray:
    """Two to four random pen strokes, or a closed polygon of three to six corners: a scribble
    or a shape rather than a digit."""
    if rng.random() < 0.35:
        corners = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radius = rng.uniform(0.6, 1.0, corners)
        pts = np.stack([np.cos(angles) * radius, np.sin(angles) * radius], axis=1) * 0.5 + 0.5
        ring = np.vstack([pts, pts[:1]])
        return hand_drawn([[(float(x), float(y)) for x, y in ring]], rng, smooth=False)
    strokes = []
    for _ in range(int(rng.integers(2, 5))):
        pts = rng.uniform(0, 1, (int(rng.integers(2, 6)), 2))
        strokes.append([(float(x), float(y)) for x, y in pts])
    return hand_drawn(strokes, rng, smooth=rng.random() < 0.6)


def _pen_width(img: np.ndarray) -> float:
    """The pen width of a digit: the median run of ink across its rows (a 1 or a 7's stem is
    crossed once a row), between 1.5 and 4.5 pixels."""
    runs = []
    for row in img > INK:
        if row.any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            runs.extend(edges[1::2] - edges[0::2])
    return float(np.clip(np.median(runs), 1.5, 4.5)) if runs else 2.0


def _add_strokes(img: np.ndarray, lines: list[np.ndarray], width: float) -> np.ndarray:
    """The digit with pen strokes (28x28 pixel coordinates) added in its own ink."""
    big = _draw([np.asarray(line) * SUPER + SUPER / 2 for line in lines], width * SUPER,
                img.shape[0] * SUPER)  # fmt: skip
    small = np.asarray(Image.fromarray(big).resize(img.shape[::-1], Image.Resampling.BOX), np.uint8)
    return np.maximum(img, small)


def continental_one(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 with a long lead-in stroke from its top down to the left, and sometimes a foot."""
    ys, xs = np.nonzero(img > INK)
    top, bottom = ys.min(), ys.max()
    height = bottom - top + 1
    tx = xs[ys <= top + 1].mean()
    bx = xs[ys >= bottom - 1].mean()
    width = _pen_width(img)
    length = height * rng.uniform(0.3, 0.65)
    angle = math.radians(rng.uniform(10, 60))  # below the horizontal, to the left
    end = (tx - length * math.cos(angle), top + length * math.sin(angle))
    lines = [np.array([(tx, top), end])]
    if rng.random() < 0.35:
        half = height * rng.uniform(0.15, 0.3)
        lines.append(np.array([(bx - half, bottom), (bx + half, bottom)]))
    return _add_strokes(img, lines, width)


def crossed_seven(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a bar across its stem, a little above or below the middle."""
    ink = img > INK
    ys, xs = np.nonzero(ink)
    top, bottom = ys.min(), ys.max()
    row = int(round(top + (bottom - top) * rng.uniform(0.45, 0.62)))
    cols = np.flatnonzero(ink[row]) if ink[row].any() else xs
    stem = cols.mean()
    half = (xs.max() - xs.min() + 1) * rng.uniform(0.22, 0.38)
    tilt = rng.uniform(-1.0, 1.0)
    line = np.array([(stem - half, row + tilt), (stem + half, row - tilt)])
    return _add_strokes(img, [line], _pen_width(img))


RESTYLE = {1: continental_one, 7: crossed_seven}
"""The digits `restyle` changes, and how."""


def restyle(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 (28, 28) 1s and 7s from x (labels y) with the strokes other countries add, as
    (images, labels); the same for the same seed. Each is fitted like MNIST's digits again."""
    x, y = np.asarray(x), np.asarray(y)
    pool = np.flatnonzero(np.isin(y, list(RESTYLE)))
    n = max(int(n), 0) if len(pool) else 0
    out = np.zeros((n, x.shape[1], x.shape[2]), np.uint8)
    labels = np.zeros(n, np.uint8)
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = int(pool[rng.integers(len(pool))])
        labels[i] = y[k]
        out[i] = fit_like_mnist(RESTYLE[int(y[k])](np.asarray(x[k], np.uint8), rng))
    return out, labels
