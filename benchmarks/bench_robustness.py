"""Accuracy on drawing-like digits: MNIST test digits redrawn on a 280x280 canvas the way people draw.

    python benchmarks/bench_robustness.py --data-dir ../shared/data/mnist [--runs default RUN ...]
        [--runs-dir runs] [--samples 2000]

Each test digit is upscaled to a random size (60 to 260 pixels), placed at a random position,
rotated (±20°), and its stroke thinned or thickened, then it goes through core.drawing.prepare and
the model, exactly as a canvas drawing would. Prints accuracy per transformation and overall, and
the same for a naive whole-canvas resize, for each run.
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
