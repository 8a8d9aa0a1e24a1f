"""Preprocessing plus prediction of one drawing, in process: median and 95th percentile.

    python benchmarks/bench_draw.py [--run default] [--runs-dir runs] [--repeats 200]

Draws a 7 on a 280x280 RGBA canvas (as streamlit-drawable-canvas returns it), then times
core.drawing.prepare + core.explain.Predictor (probabilities and learned features in one call),
the work the Draw page does for every finished stroke.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from core.drawing import prepare
from core.explain import Predictor
from core.models import build_model, preset
from core.runs import RunStore


def drawn_seven() -> np.ndarray:
    """A 7 drawn with an 18-pixel brush, white on black, alpha 255 everywhere."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line([(60, 55), (210, 55), (120, 240)], fill=(255, 255, 255, 255), width=18)
    return np.asarray(img)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", default="default", help="a saved run, or 'tutorial' for a fresh net"
    )
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if args.run == "tutorial":
        model = build_model(preset("tutorial"))
    else:
        model = RunStore(args.runs_dir).load_model(args.run)
    predictor = Predictor(model)
    canvas = drawn_seven()
    for _ in range(20):  # warm up
        predictor.predict_with_features(prepare(canvas))
    prep, total = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        x = prepare(canvas)
        t1 = time.perf_counter()
        probs, _ = predictor.predict_with_features(x)
        t2 = time.perf_counter()
        prep.append(t1 - t0)
        total.append(t2 - t0)
    p95 = sorted(total)[int(0.95 * len(total)) - 1]
    print(f"run {args.run}: answer {int(probs.argmax())} ({probs.max():.1%})")
    print(
        f"prepare: median {statistics.median(prep) * 1000:.2f} ms; prepare + predict: median "
        f"{statistics.median(total) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms over {args.repeats} drawings"
    )


if __name__ == "__main__":
    main()
