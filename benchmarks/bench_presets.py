"""Train presets on full MNIST through the command line and print seconds and test accuracy.

    python benchmarks/bench_presets.py --data-dir ../shared/data/mnist [--presets tutorial fast]
        [--seeds 0 1 2] [--tutorial-seeds 0] [--epochs N]

Each training runs in its own process (`python -m core train`), as a user would run it, so the
figures include nothing but that run; the load average before each run is printed beside it, since
a busy machine slows training. Prints one line per run and a summary: the `fast` preset's goals
(at least 99.0% test accuracy in at most 10 s of training on every seed) and the tutorial/fast
ratio of mean training times in this same run (goal: at least 20x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST_SECONDS, FAST_ACCURACY, RATIO = 10.0, 0.990, 20.0
"""Issue 12's goals for the fast preset."""


def train(preset: str, seed: int, data_dir: str, runs_dir: str, epochs: int | None) -> dict:
    """One `python -m core train` run; returns its closing JSON line."""
    cmd = [sys.executable, "-m", "core", "train", "--preset", preset, "--seed", str(seed)]
    cmd += ["--data-dir", data_dir, "--runs-dir", runs_dir]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    epochs_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    result = json.loads(out.strip().splitlines()[-1])
    result["epoch_lines"] = epochs_lines
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--presets", nargs="+", default=["tutorial", "fast"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--tutorial-seeds",
        nargs="+",
        type=int,
        help="seeds for the tutorial preset (default: --seeds); one is enough for the ratio",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--runs-dir", default=None, help="keep the runs here (default: temporary)")
    args = parser.parse_args()
    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="bench-presets-")
    summary: dict[str, list[dict]] = {}
    for preset in args.presets:
        seeds = args.tutorial_seeds if preset == "tutorial" and args.tutorial_seeds else args.seeds
        for seed in seeds:
            load = os.getloadavg()[0]
            r = train(preset, seed, args.data_dir, runs_dir, args.epochs)
            for line in r.pop("epoch_lines"):
                print(f"  {preset} seed {seed}: {line}")
            print(
                f"{preset:9s} seed {seed}: train {r['train_seconds']:7.1f} s  "
                f"test accuracy {r['test_accuracy']:.4f}  loss {r['test_loss']:.4f}  "
                f"{r['images_per_second']} img/s  peak RSS {r['peak_rss_mb']:.0f} MB  "
                f"load before {load:.2f}",
                flush=True,
            )
            summary.setdefault(preset, []).append(r)
    print("\nsummary")
    means = {}
    for preset, results in summary.items():
        secs = [r["train_seconds"] for r in results]
        accs = [r["test_accuracy"] for r in results]
        means[preset] = statistics.mean(secs)
        print(
            f"  {preset:9s} mean train {means[preset]:.1f} s (max {max(secs):.1f}), "
            f"test accuracy min {min(accs):.4f} mean {statistics.mean(accs):.4f}, "
            f"peak RSS max {max(r['peak_rss_mb'] for r in results):.0f} MB"
        )
    if "fast" in summary and not args.epochs:
        fast = summary["fast"]
        slowest = max(r["train_seconds"] for r in fast)
        worst = min(r["test_accuracy"] for r in fast)
        print(
            f"  fast goal (every seed >= {FAST_ACCURACY:.1%} in <= {FAST_SECONDS:g} s): "
            f"slowest {slowest:.1f} s, lowest {worst:.2%}: "
            f"{'met' if slowest <= FAST_SECONDS and worst >= FAST_ACCURACY else 'NOT met'}"
        )
    if "tutorial" in means and "fast" in means:
        ratio = means["tutorial"] / means["fast"]
        print(
            f"  tutorial / fast training time: {ratio:.1f}x "
            f"(goal >= {RATIO:g}x: {'met' if ratio >= RATIO else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
