"""Accuracy on drawing-like digits: MNIST test digits redrawn on a 280x280 canvas the way people draw.

    python benchmarks/bench_robustness.py --data-dir ../shared/data/mnist [--runs default RUN ...]
        [--runs-dir runs] [--samples 2000]

Each test digit is upscaled to a random size (60 to 260 pixels), placed at a random position,
rotated (±20°), and its stroke thinned or thickened, then it goes through core.drawing.prepare and
the model, exactly as a canvas drawing would. Prints accuracy per transformation and overall, and
the same for a naive whole-canvas resize, for each run. Before that, pen drawings: each digit's
strokes as a mouse draws them (two hands per digit), at random size, place, slant and brush width.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from core.data import load_mnist
from core.drawing import naive_resize, prepare
from core.explain import Predictor
from core.runs import RunStore

CANVAS = 280


def redraw(digit: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """One MNIST digit as a 280x280 RGBA canvas drawing, transformed by `kind`."""
    size = int(rng.integers(60, 261)) if kind in ("size", "all") else 200
    img = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    if kind in ("rotation", "all"):
        img = img.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if kind in ("stroke", "all"):
        radius = int(rng.integers(-2, 6)) * size // 100
        if radius > 0:
            arr = ndimage.grey_dilation(arr, size=(radius, radius))
        elif radius < 0:
            arr = ndimage.grey_erosion(arr, size=(-radius, -radius))
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    if kind in ("position", "all"):
        top, left = (int(rng.integers(0, CANVAS - size + 1)) for _ in range(2))
    else:
        top = left = (CANVAS - size) // 2
    canvas[top : top + size, left : left + size] = arr
    gray = (np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


# Pen strokes of each digit as drawn with a mouse, in a unit box (x right, y down); a digit may
# have several strokes. Two hands per digit.
STROKES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(0.5, 0), (0.15, 0.2), (0.1, 0.6), (0.4, 1), (0.8, 0.8), (0.9, 0.3), (0.5, 0)]],
        [[(0.6, 0.05), (0.2, 0.3), (0.25, 0.9), (0.7, 0.95), (0.85, 0.4), (0.6, 0.05)]]],
    1: [[[(0.5, 0), (0.5, 1)]], [[(0.3, 0.2), (0.6, 0), (0.55, 1)]]],
    2: [[[(0.1, 0.25), (0.5, 0), (0.9, 0.25), (0.1, 1), (0.95, 1)]],
        [[(0.15, 0.2), (0.6, 0.02), (0.8, 0.35), (0.2, 0.95), (0.9, 0.9)]]],
    3: [[[(0.1, 0.1), (0.8, 0.05), (0.4, 0.45), (0.9, 0.7), (0.5, 1), (0.1, 0.85)]],
        [[(0.15, 0.05), (0.85, 0.2), (0.45, 0.5), (0.85, 0.8), (0.15, 0.95)]]],
    4: [[[(0.6, 0), (0.1, 0.65), (0.9, 0.65)], [(0.65, 0.3), (0.65, 1)]],
        [[(0.2, 0), (0.15, 0.55), (0.85, 0.55)], [(0.75, 0), (0.75, 1)]]],
    5: [[[(0.85, 0), (0.2, 0), (0.15, 0.45), (0.7, 0.45), (0.85, 0.75), (0.5, 1), (0.1, 0.9)]],
        [[(0.2, 0.05), (0.15, 0.45), (0.75, 0.5), (0.7, 0.95), (0.15, 0.9)], [(0.2, 0.05), (0.85, 0.05)]]],
    6: [[[(0.7, 0), (0.2, 0.5), (0.2, 0.9), (0.6, 1), (0.8, 0.7), (0.5, 0.5), (0.2, 0.7)]],
        [[(0.6, 0), (0.3, 0.3), (0.2, 0.8), (0.5, 1), (0.8, 0.8), (0.6, 0.55), (0.25, 0.65)]]],
    7: [[[(0.1, 0), (0.9, 0), (0.35, 1)]], [[(0.1, 0.05), (0.85, 0.05), (0.5, 0.55), (0.45, 1)]]],
    8: [[[(0.8, 0.1), (0.5, 0), (0.2, 0.2), (0.8, 0.75), (0.5, 1), (0.2, 0.75), (0.8, 0.25), (0.8, 0.1)]],
        [[(0.5, 0.5), (0.2, 0.25), (0.5, 0), (0.8, 0.25), (0.5, 0.5), (0.2, 0.75), (0.5, 1), (0.8, 0.75), (0.5, 0.5)]]],
    9: [[[(0.8, 0.3), (0.5, 0), (0.2, 0.3), (0.5, 0.5), (0.8, 0.3), (0.75, 1)]],
        [[(0.75, 0.15), (0.45, 0.02), (0.2, 0.25), (0.45, 0.45), (0.75, 0.2), (0.6, 1)]]],
}  # fmt: skip


def pen_drawings(rng: np.random.Generator, per_style: int = 12):
    """Canvas drawings of every digit: random size, place, slant and brush, as a mouse draws."""
    from PIL import ImageDraw

    for digit, hands in STROKES.items():
        for strokes in hands:
            for _ in range(per_style):
                height = rng.uniform(70, 250)
                width = height * rng.uniform(0.45, 0.75)
                left = rng.uniform(5, CANVAS - width - 5)
                top = rng.uniform(5, CANVAS - height - 5)
                slant = rng.uniform(-0.25, 0.25)
                brush = int(rng.integers(6, 30))
                img = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 255))
                pen = ImageDraw.Draw(img)
                for stroke in strokes:
                    points = [
                        (left + (x + slant * (1 - y)) * width, top + y * height) for x, y in stroke
                    ]
                    pen.line(points, fill=(255, 255, 255, 255), width=brush, joint="curve")
                yield digit, np.asarray(img)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runs", nargs="+", default=["default"])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    data = load_mnist(args.data_dir)
    store = RunStore(args.runs_dir)
    kinds = ("none", "size", "position", "rotation", "stroke", "all")
    for name in args.runs:
        predictor = Predictor(store.load_model(name))
        print(f"run {name}:")
        right = naive_right = total = 0
        for digit, canvas in pen_drawings(np.random.default_rng(0)):
            x = prepare(canvas)
            right += x is not None and int(predictor(x).argmax()) == digit
            naive_right += int(predictor(naive_resize(canvas)).argmax()) == digit
            total += 1
        print(
            f"  pen drawings of 0-9 ({total}): prepare(): {right / total:6.2%}   "
            f"naive resize: {naive_right / total:6.2%}",
            flush=True,
        )
        for kind in kinds:
            rng = np.random.default_rng(0)
            right = naive_right = 0
            for i in range(args.samples):
                canvas = redraw(data.x_test[i], rng, kind)
                x = prepare(canvas)
                right += x is not None and int(predictor(x).argmax()) == data.y_test[i]
                naive_right += int(predictor(naive_resize(canvas)).argmax()) == data.y_test[i]
            print(
                f"  {kind:9s} prepare(): {right / args.samples:6.2%}   "
                f"naive resize: {naive_right / args.samples:6.2%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
