"""Preprocessing plus prediction of one drawing, in process: median and 95th percentile.

    python benchmarks/bench_draw.py [--run NAME --runs-dir DIR] [--repeats 200]

Draws a 7 on a 280x280 RGBA canvas (as streamlit-drawable-canvas returns it: opaque black
background, white strokes), then times core.drawing.prepare and core.explain.Predictor
(probabilities and learned features in one call), the work the Draw page does for every stroke,
then draw_session.read (what the page does per stroke, without a calibration: the calibrated
verdict is timed by bench_draw_page.py) and, fewer times, each explanation the page can show, as
it shows it (another class's map on the answer's scale). Without --run it uses a fresh
(untrained) network of the tutorial preset; the timings do not depend on the weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from core import draw_session, explain
from core.drawing import prepare
from core.models import build_model, preset
from core.runs import RunStore


def drawn_seven() -> np.ndarray:
    """A slanted 7 with a crossbar, drawn with an 18-pixel brush, alpha 255 everywhere."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    pen = ImageDraw.Draw(img)
    white = (255, 255, 255, 255)
    pen.line([(60, 55), (210, 50), (120, 240)], fill=white, width=18, joint="curve")
    pen.line([(110, 150), (190, 148)], fill=white, width=18)
    return np.asarray(img)


def timed(fn: Callable[[], object], repeats: int, warmup: int = 20) -> list[float]:
    """Seconds per call of fn, after a warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def figures(times: list[float]) -> str:
    """Median and 95th percentile in milliseconds."""
    p95 = float(np.percentile(times, 95))
    return f"median {statistics.median(times) * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a saved run to load (default: a fresh tutorial network)")
    parser.add_argument("--runs-dir", default="runs", help="folder of saved runs (with --run)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if args.run:
        model = RunStore(args.runs_dir).load_model(args.run)
        label = f"run {args.run}"
    else:
        model = build_model(preset("tutorial"), compile=False)
        label = "tutorial preset (untrained)"
    explain.check_model(model, label)
    predictor = explain.Predictor(model)
    canvas = drawn_seven()
    x = prepare(canvas)

    prep = timed(lambda: prepare(canvas), args.repeats)
    pred = timed(lambda: predictor.predict_with_features(x), args.repeats)
    both = timed(lambda: predictor.predict_with_features(prepare(canvas)), args.repeats)
    probs, _ = predictor.predict_with_features(x)
    answer = int(probs.argmax())
    print(f"{label}: {model.count_params():,} parameters; answer {answer} ({probs.max():.1%})")
    print(f"  prepare (280x280 RGBA)        {figures(prep)}")
    print(f"  Predictor (probs + features)  {figures(pred)}")
    print(f"  prepare + Predictor           {figures(both)}   over {args.repeats} calls")
    read = timed(lambda: draw_session.read(canvas, predictor, None), args.repeats)
    print(f"  draw_session.read (uncalib.)  {figures(read)}   over {args.repeats} calls")
    # What the page computes once a drawing is answered: the map asked for, on the answer's scale.
    maps = {
        f"{view} (answer's scale)": lambda view=view: draw_session.explanation(
            model, x, view, (answer + 1) % 10, answer
        )
        for view in draw_session.METHODS
    }
    maps["trace (Activations view)"] = lambda: explain.trace(model, x)
    for name, fn in maps.items():
        times = timed(fn, repeats=20, warmup=2)
        print(f"  {name:29s} {figures(times)}   over 20 calls")


if __name__ == "__main__":
    main()
