"""Made-up "not a digit" examples, and training digits prepared the way the Draw page prepares a
drawing.

Outlier exposure (Hendrycks, Mazeika and Dietterich, 2019): besides the digits, the network is
shown inputs that are no digit and taught to answer them with equal probabilities (a tenth each),
so that a letter or a scribble on the Draw page gets a low confidence instead of a sure "4". Half of
the non-digits are letters drawn by `core.strokes`, two in ten are scrawls and shapes drawn there
too, and the rest are built from MNIST training digits: two digits side by side, two overlaid, a
digit turned on its side (no other data set). Letters are what teach the network best: with
non-digits made from MNIST alone, at most 43% of letters and scribbles were flagged at 3% of real
digits flagged; with three in ten letters 75%, with half letters 79% (benchmarks/README.md).

`prepared_digits` passes digits through `core.drawing.prepare` (stroke width, 20-pixel box, centre
of mass), so that what the network trains on looks like what the page will give it.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np

from core import drawing, strokes
from core.data import IMAGE_SIZE

KINDS = ("letter", "scrawl", "pair", "overlay", "turned")
"""The kinds of made-up non-digits."""
CYCLE = ("letter", "pair", "letter", "overlay", "scrawl", "letter", "turned", "letter", "scrawl",
         "letter")  # fmt: skip
"""The order they are made in: half are letters, two in ten scrawls or shapes, three in ten made
from MNIST digits."""
INK_LEVEL = drawing.FIT_INK_LEVEL
PICK_TRIES = 50
ONE_SPREAD, ONE_SLANT = 0.3, 40.0
"""Ink spread across its main axis by less than this share of its spread along it, that axis
within this many degrees of upright, reads as a 1 and is made again."""
"""Pixels above this (of 255) count as ink when cropping."""
_PREPARED: OrderedDict[tuple, np.ndarray] = OrderedDict()
_PREPARED_KEPT = 2
_PREPARED_LOCK = threading.Lock()


def make_non_digits(
    x: np.ndarray, y: np.ndarray, n: int, seed: int = 0, prepare: bool = False
) -> np.ndarray:
    """n uint8 (28, 28) non-digits built from the digits x (labels y), the same for the same seed.

    Each is cropped to its ink, scaled into a 20-pixel box and centred by mass as MNIST's digits
    were, or, with prepare, passed through `core.drawing.prepare` like the training digits it
    joins (so that the way it was prepared never tells the two apart).
    """
    x, y = np.asarray(x), np.asarray(y)
    out = np.zeros((max(int(n), 0), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    if len(out) == 0:
        return out
    if len(np.unique(y)) < 2:
        raise ValueError("made-up non-digits need digits of at least two different classes.")
    rng = np.random.default_rng(seed)
    for i in range(len(out)):
        kind = CYCLE[i % len(CYCLE)]
        img = _compose(kind, x, y, rng)
        for _ in range(PICK_TRIES):
            if not _like_a_one(img):
                break
            img = _compose(kind, x, y, rng)
        out[i] = _finish(img, prepare)
    return out


def _like_a_one(img: np.ndarray) -> bool:
    """Ink that is one stroke, upright or slanted (half a 7, an upright stroke): a 1 to anyone,
    so not a non-digit. A stroke's ink spreads along one axis: the spread across it is small."""
    ys, xs = np.nonzero(img > INK_LEVEL)
    if ys.size < 2:
        return True
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    across, along = np.linalg.eigvalsh(cov)
    major = np.linalg.eigh(cov)[1][:, 1]
    upright = abs(major[1]) >= math.cos(math.radians(ONE_SLANT))
    return bool(upright and across < ONE_SPREAD**2 * along)


def _pick(y: np.ndarray, rng: np.random.Generator, avoid: tuple[int, ...] = ()) -> int:
    """A random index whose label is not in avoid (any index after a few tries: a set may lack
    other labels)."""
    for _ in range(PICK_TRIES):
        i = int(rng.integers(len(y)))
        if int(y[i]) not in avoid:
            return i
    return i


def _compose(kind: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One raw non-digit of the given kind (uint8, any shape)."""
    if kind == "letter":
        return strokes.letter(rng)
    if kind == "scrawl":
        return strokes.scrawl(rng)
    if kind == "turned":
        # 0 and 8 turned on their side still look like themselves (or like nothing new).
        a = x[_pick(y, rng, (0, 8))]
        return np.rot90(a, k=1 if rng.random() < 0.5 else 3)
    i = _pick(y, rng)
    a, b = x[i], x[_pick(y, rng, (int(y[i]),))]
    if kind == "pair":
        return np.concatenate([a[:, 4:24], b[:, 4:24]], axis=1)
    return np.maximum(a, np.roll(b, int(rng.integers(-3, 4)), axis=1))  # overlay


def _finish(img: np.ndarray, prepare: bool) -> np.ndarray:
    """The raw non-digit as a 28x28 uint8 input: prepared like a drawing, or fitted like MNIST."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if prepare:
        x28 = drawing.prepare(img)
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8) if x28 is None else _to_uint8(x28)
    return drawing.fit_like_mnist(img)


def _to_uint8(x28: np.ndarray) -> np.ndarray:
    return (np.clip(x28, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def prepared_digits(x: np.ndarray) -> np.ndarray:
    """Every uint8 digit of x passed through `core.drawing.prepare` (as uint8), computed once per
    process for the same digits: preparing 54,000 digits takes a few minutes on 2 cores."""
    x = np.ascontiguousarray(x, dtype=np.uint8)
    key = (x.shape, hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest())
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
        out = np.empty_like(x)
        for i, img in enumerate(x):
            x28 = drawing.prepare(img)
            # A digit too faint to find (none in MNIST) is kept as it was.
            out[i] = img if x28 is None else _to_uint8(x28)
        out.setflags(write=False)
        _PREPARED[key] = out
        while len(_PREPARED) > _PREPARED_KEPT:
            _PREPARED.popitem(last=False)
        return out
