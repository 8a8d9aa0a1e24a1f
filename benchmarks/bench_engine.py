"""Throughput of training through TrainingJob against a bare model.fit of the same model and data.

    python benchmarks/bench_engine.py --data-dir ../shared/data/mnist [--preset tutorial]
        [--samples 20000] [--repeats 3]

Alternates the two (bare, job, bare, job, ...) in one process so both see the same machine load,
and prints images per second of each and their ratio (the live progress must cost almost nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from core.data import load_mnist, make_dataset
from core.models import build_model, preset
from core.training import JobRegistry, TrainingJob


def bare_fit(config, data) -> float:
    """Images per second of model.fit with no callbacks, same pipeline as the job."""
    model = build_model(config)
    x, y = data.x_train[: config.train_samples], data.y_train[: config.train_samples]
    ds = make_dataset(x, y, config.batch_size, shuffle=True, seed=config.seed)
    # One warm-up batch so graph tracing is not counted (the job's clock also starts after it).
    model.fit(ds.take(1), epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(ds, epochs=config.epochs, verbose=0, shuffle=False)
    return len(x) * config.epochs / (time.perf_counter() - start)


def job_fit(config, data) -> float:
    """Images per second of the same training through TrainingJob (progress callback on)."""
    job = TrainingJob(config, data, store=None)
    job.start(JobRegistry(max_concurrent=1))
    job.wait()
    snap = job.snapshot()
    assert snap.state.value == "finished", snap.message
    seconds = snap.batch_history["seconds"]
    # The first batch includes graph tracing: measure from its end, as the bare run's warm-up does.
    return (len(seconds) - 1) * config.batch_size / (seconds[-1] - seconds[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default="tutorial")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load_mnist(args.data_dir)
    config = dataclasses.replace(
        preset(args.preset), train_samples=args.samples, epochs=args.epochs, validation_split=0.0
    )
    keras.utils.set_random_seed(0)
    bare, job = [], []
    for i in range(args.repeats):
        bare.append(bare_fit(config, data))
        job.append(job_fit(config, data))
        print(f"round {i + 1}: bare {bare[-1]:.0f} img/s, job {job[-1]:.0f} img/s", flush=True)
    b, j = statistics.median(bare), statistics.median(job)
    print(
        f"preset {args.preset}, {args.samples} samples x {args.epochs} epoch(s), batch "
        f"{config.batch_size}: bare model.fit {b:.0f} img/s, TrainingJob {j:.0f} img/s, "
        f"ratio {j / b:.3f}"
    )


if __name__ == "__main__":
    main()
