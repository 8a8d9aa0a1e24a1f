"""The Train page's time estimate against the real training time, preset by preset.

    python benchmarks/bench_estimate.py --data-dir ../shared/data/mnist [--presets fast tutorial]
        [--train-samples N] [--epochs N]

For each preset, computes the estimate exactly as the Train page shows it (a few batches of the
network timed on this machine, `core.models.time_training_steps`, scaled by
`estimate_from_timing`), then trains the same configuration with `python -m core train
--no-save` in a fresh process, one at a time, and prints the estimate, the seconds of training
the command line reports, their ratio and the load average. Ends with one JSON line. The issue's
goal: within 30% on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def estimate(config, available: int) -> float:
    """Seconds the Train page would show for config (its timing taken fresh, as a page would)."""
    from core.models import estimate_from_timing, pace_key, time_training_steps

    return estimate_from_timing(config, time_training_steps(pace_key(config)), available)


def train_seconds(preset: str, data_dir: str, samples: int | None, epochs: int | None) -> dict:
    """`python -m core train` of the preset; its closing JSON line."""
    cmd = [sys.executable, "-m", "core", "train", "--preset", preset, "--no-save"]
    cmd += ["--data-dir", data_dir]
    if samples:
        cmd += ["--train-samples", str(samples)]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST files")
    parser.add_argument("--presets", nargs="+", default=["fast", "tutorial"])
    parser.add_argument("--train-samples", type=int, help="digits to train on (all)")
    parser.add_argument("--epochs", type=int, help="epochs (each preset's own)")
    args = parser.parse_args()

    from core import memory

    memory.configure()
    import dataclasses

    from core.data import TRAIN_SIZE
    from core.models import preset

    results = []
    for name in args.presets:
        changes = {}
        if args.train_samples:
            changes["train_samples"] = args.train_samples
        if args.epochs:
            changes["epochs"] = args.epochs
        config = dataclasses.replace(preset(name), **changes).validate()
        load = os.getloadavg()[0]
        guess = estimate(config, TRAIN_SIZE)
        real = train_seconds(name, args.data_dir, args.train_samples, args.epochs)
        seconds = real["train_seconds"]
        row = {
            "preset": name,
            "estimate_s": round(guess, 1),
            "train_seconds": seconds,
            "ratio": round(guess / seconds, 3),
            "within_30_percent": abs(guess / seconds - 1) <= 0.30,
            "test_accuracy": real["test_accuracy"],
            "load_average_before": round(load, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        }
        results.append(row)
        print(
            f"{name:<9} estimate {guess:7.1f} s   trained {seconds:7.1f} s   "
            f"estimate/real {guess / seconds:5.2f}   (load {load:.1f})",
            flush=True,
        )
    print(json.dumps({"cpus": os.cpu_count(), "results": results}), flush=True)


if __name__ == "__main__":
    main()
