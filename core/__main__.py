"""Command line: train a preset with the app's own engine, evaluate a saved run.

    python -m core train --preset tutorial|fast|robust|draw [--epochs N] [--not-digits SHARE]
        [--prepared-share SHARE] [--no-optimizer] [--name NAME] [--data-dir DIR] [--runs-dir DIR]
    python -m core evaluate RUN [--data-dir DIR] [--runs-dir DIR]
    python -m core runs [--runs-dir DIR]
    python -m core predict PATH... [--run NAME] [--runs-dir DIR] [--data-dir DIR]
    python -m core worker [--redis-url URL] [--burst] [--name NAME] [--threads N] [--data-dir DIR]

train (also with --redis-url URL: queued for a worker) and evaluate end with one JSON line on
stdout; runs prints one per run folder, predict one per image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from core import memory
from core.models import PRESETS, ConfigError, ModelConfig, preset


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _print_progress(job, last: tuple[int, int]) -> tuple[int, int]:
    snap = job.snapshot()
    epochs = snap.epoch_history.get("epoch", [])
    if len(epochs) > last[0]:
        for i in range(last[0], len(epochs)):
            h = snap.epoch_history
            parts = [f"epoch {int(epochs[i])}/{snap.epochs}"]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                if key in h and i < len(h[key]):
                    parts.append(f"{key} {h[key][i]:.4f}")
            parts.append(f"lr {h.get('learning_rate', [0])[i]:.2e}")
            parts.append(f"{h['seconds'][i]:.1f}s")
            print("  ".join(parts), flush=True)
        return len(epochs), snap.batch
    return last


def cmd_train(args: argparse.Namespace) -> int:
    """Train a preset and save it as a run."""
    from core.data import load_mnist
    from core.runs import RunStore

    try:
        config = preset(args.preset)
        changes = {}
        for name in (
            "epochs",
            "seed",
            "batch_size",
            "train_samples",
            "not_digits",
            "styled_digits",
            "prepared_share",
            "elastic",
            "pen_width",
        ):
            value = getattr(args, name)
            if value is not None:
                changes[name] = value
        config = dataclasses.replace(config, **changes).validate()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.redis_url:
        return train_on_worker(args, config)
    # Imported after validation: Keras takes seconds to import, a bad argument should not wait.
    from core.training import JobRegistry, JobState, TrainingJob

    data = load_mnist(args.data_dir)
    print(f"data: {data.description}: {data.shapes()}", flush=True)
    store = RunStore(args.runs_dir) if not args.no_save else None
    job = TrainingJob(config, data, store=store, run_name=args.name)
    job.start(JobRegistry(max_concurrent=1))
    last = (0, 0)
    try:
        while not job.wait(timeout=0.5):
            last = _print_progress(job, last)
    except KeyboardInterrupt:
        print("stopping…", file=sys.stderr, flush=True)
        job.stop()
        job.wait()
    _print_progress(job, last)
    snap = job.snapshot()
    if snap.state == JobState.FAILED:
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    result = {
        "run": job.run_name,
        "state": snap.state.value,
        "preset": config.preset,
        "test_accuracy": job.test_metrics.get("test_accuracy"),
        "test_loss": job.test_metrics.get("test_loss"),
        "train_seconds": round(job.train_seconds, 2),
        "epochs": len(snap.epoch_history.get("epoch", [])),
        "images_per_second": round(
            len(snap.batch_history.get("step", []))
            * config.batch_size
            / max(job.train_seconds, 1e-9)
        ),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "data_source": data.source,
    }
    if args.no_optimizer and job.run_name:
        result["model_bytes"] = _drop_optimizer(store, job)
    print(json.dumps(result), flush=True)
    return 0


def _drop_optimizer(store, job) -> int:
    """Rewrite the saved run's model file without the optimizer's state (a third of its size;
    a run trained further gets a fresh optimizer anyway); returns its new size in bytes."""
    import tempfile

    import keras

    from core.runs import atomic_write_bytes

    path = store.get(job.run_name).model_path
    # Keras 3 saves a .keras file with the optimizer state of a compiled model (it ignores
    # include_optimizer): a copy loaded uncompiled holds none, and a run trained further is
    # compiled afresh (core.training). The ended job kept no model: the saved file is read back.
    plain_model = keras.saving.load_model(path, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.name
        plain_model.save(plain)
        atomic_write_bytes(path, plain.read_bytes())
    return path.stat().st_size


def train_on_worker(args: argparse.Namespace, config: ModelConfig) -> int:
    """Queue the job on Redis, print its progress while a worker trains it, bring the run home."""
    from core.engine import EngineError, JobRequest
    from core.rq_engine import RQEngine, redact
    from core.runs import RunStore

    store = RunStore(args.runs_dir) if not args.no_save else None
    try:
        engine = RQEngine(args.redis_url, store)
        job = engine.submit(JobRequest(config, run_name=args.name))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"queued {job.id} on {redact(args.redis_url)}; waiting for a worker…", flush=True)
    last, said = (0, 0), ""
    try:
        while not job.state.done:
            snap = job.snapshot()
            if snap.state.value in ("queued", "stopping") and snap.message != said:
                said = snap.message
                place = f" (place {snap.queue_position})" if snap.queue_position else ""
                print(f"{snap.state.value}: {snap.message}{place}", flush=True)
            last = _print_progress(job, last)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping…", file=sys.stderr, flush=True)
        job.stop()
        while not job.state.done:
            time.sleep(0.5)
    _print_progress(job, last)
    engine.shutdown()
    snap, info = job.snapshot(), job.info
    if snap.state.value == "failed":
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    seconds = float(info.get("train_seconds") or snap.elapsed)
    result = {
        "run": snap.run_name,
        "state": snap.state.value,
        "preset": config.preset,
        "test_accuracy": snap.test_metrics.get("test_accuracy"),
        "test_loss": snap.test_metrics.get("test_loss"),
        "train_seconds": round(seconds, 2),
        "epochs": len(snap.epoch_history.get("epoch", [])),
        "images_per_second": round(
            len(snap.batch_history.get("step", [])) * config.batch_size / max(seconds, 1e-9)
        ),
        "peak_rss_mb": info.get("peak_rss_mb"),
        "data_source": info.get("data_source"),
        "worker": job.worker,
    }
    print(json.dumps(result), flush=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Train queued jobs from Redis (RQ's worker; TensorFlow only in each job's work horse)."""
    from core.worker import run_worker

    if args.threads is not None and args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    return run_worker(args.redis_url, args.burst, args.name, args.threads, args.data_dir)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved run on the test set."""
    from core.data import load_mnist
    from core.evaluation import evaluate
    from core.runs import RunError, RunStore

    store = RunStore(args.runs_dir)
    try:
        info = store.get(args.run)
        model = store.load_model(args.run)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data = load_mnist(args.data_dir)
    start = time.perf_counter()
    result = evaluate(model, data.x_test, data.y_test)
    print(
        json.dumps(
            {
                "run": info.name,
                "test_accuracy": result.accuracy,
                "test_loss": result.loss,
                "recorded_test_accuracy": info.test_accuracy,
                "evaluate_seconds": round(time.perf_counter() - start, 3),
                "test_samples": len(data.y_test),
                "data_source": data.source,
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        ),
        flush=True,
    )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """One JSON line per run folder, readable or not; exits 0 even when some are unreadable."""
    from core.runs import RunStore

    runs, bad = RunStore(args.runs_dir).list_runs()
    for info in runs:
        line = {
            "name": info.name,
            "status": info.status,
            "test_accuracy": info.test_accuracy,
            "readable": True,
            "builtin": info.builtin,
        }
        print(json.dumps(line), flush=True)
    for b in bad:
        line = {"name": b.name, "status": None, "test_accuracy": None, "readable": False}
        print(json.dumps(line | {"builtin": False, "reason": b.reason}), flush=True)
    return 0


def add_runs_command(sub: argparse._SubParsersAction) -> None:
    """The runs subcommand's arguments."""
    p = sub.add_parser("runs", help="list the saved runs, one JSON line each, unreadable ones too")
    p.add_argument("--runs-dir", default=os.environ.get("DIGITLAB_RUNS_DIR", "runs"))
    p.set_defaults(func=cmd_runs)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
"""What predict reads in a folder (a file named on the command line is read whatever its name)."""
MAX_IMAGE_FILE_BYTES = 50 * 1024 * 1024
"""Larger files are not read: no photo of one digit is this large."""


def image_files(paths: list[str]) -> Iterator[tuple[str, Path | None, str | None]]:
    """(name, path, None) for every image to read, or (name, None, why not) for a path that
    gives none; folders are searched recursively, hidden files and folders skipped."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                yield raw, None, f"No image files ({', '.join(IMAGE_SUFFIXES)}) in this folder."
            yield from ((str(p), p, None) for p in found)
        elif path.is_file():
            yield raw, path, None
        else:
            yield raw, None, "No such file or folder."


def _prepare_file(path: Path):
    """The prepared stages of one image file, None when it has no ink; ValueError or OSError
    (ImageError is one) with the reason when it cannot be read."""
    from core import draw_session, drawing

    if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        raise drawing.ImageError(
            f"The file is larger than {MAX_IMAGE_FILE_BYTES // 2**20} MB; it was not read."
        )
    return drawing.prepare_stages(draw_session.load_upload(path.read_bytes()))


def _unreadable(name: str, reason: str) -> dict:
    return {
        "file": name,
        "digit": None,
        "probabilities": None,
        "confidence": None,
        "unsure": True,
        "reason": reason,
    }


def cmd_predict(args: argparse.Namespace) -> int:
    """Read image files or folders the way the Draw page reads an upload, a batch at a time;
    one JSON line per image, never a traceback for a bad one."""
    from core.data import DataError, held_out, load_mnist
    from core.runs import RunError, RunStore

    store = RunStore(args.runs_dir)
    try:
        info = store.get(args.run)
        model = store.load_model(args.run)
        data = load_mnist(args.data_dir)
    except (RunError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from core import explain

    try:
        explain.check_model(model, info.name)
    except explain.IncompatibleModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The Draw page's own predictor and calibration (ui.resources builds them the same way).
    predictor = explain.Predictor(model)
    calibration = explain.calibrate(model, *held_out(data, info.config))
    batch: list[tuple[str, object]] = []
    for name, path, error in image_files(args.paths):
        if error is None:
            try:
                stages = _prepare_file(path)
                error = None if stages is not None else NO_INK
            except (OSError, ValueError) as exc:
                error = str(exc) if isinstance(exc, ValueError) else f"Cannot read it ({exc})."
        if error is not None:
            batch.append((name, error))
        else:
            # Only the input and the marks are kept: a stage at full size may be megabytes.
            batch.append((name, (stages.centered, stages.marks)))
        if len(batch) >= args.batch_size:
            _predict_batch(batch, predictor, calibration)
            batch = []
    _predict_batch(batch, predictor, calibration)
    return 0


NO_INK = "The image has no visible ink: it is blank, or its digit has too little contrast."


def _predict_batch(batch: list[tuple[str, object]], predictor, calibration) -> None:
    """Predict every readable image of the batch at once and print a line for each image."""
    import numpy as np

    from core import explain

    readable = [x for _, x in batch if not isinstance(x, str)]
    if readable:
        probs, features = predictor.batch_with_features(np.stack([x28 for x28, _ in readable]))
    k = 0
    for name, x in batch:
        if isinstance(x, str):
            print(json.dumps(_unreadable(name, x)), flush=True)
            continue
        verdict = explain.assess(probs[k], features[k], calibration, readable[k][1])
        line = {
            "file": name,
            "digit": verdict.predicted,
            "probabilities": [float(p) for p in probs[k]],
            "confidence": verdict.confidence,
            "unsure": verdict.unsure,
            "reason": verdict.reason or None,
        }
        print(json.dumps(line), flush=True)
        k += 1


def add_predict_command(sub: argparse._SubParsersAction) -> None:
    """The predict subcommand's arguments."""
    p = sub.add_parser(
        "predict", help="read digits in image files or folders, one JSON line per image"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument(
        "--run", default="default", help="the run whose model reads (default: the shipped model)"
    )
    p.add_argument("--runs-dir", default=os.environ.get("DIGITLAB_RUNS_DIR", "runs"))
    p.add_argument("--data-dir", help="MNIST folder, for calibrating the model's confidence")
    p.add_argument("--batch-size", type=int, default=256, help="images predicted at once")
    p.set_defaults(func=cmd_predict)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command."""
    memory.configure()  # before anything imports TensorFlow
    parser = argparse.ArgumentParser(prog="python -m core", description="Digit Lab command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a preset and save the run")
    train.add_argument("--preset", choices=sorted(PRESETS), default="tutorial")
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--batch-size", dest="batch_size", type=int)
    train.add_argument("--train-samples", dest="train_samples", type=int)
    train.add_argument(
        "--not-digits",
        dest="not_digits",
        type=float,
        help="made-up non-digits to train on, as a share of the training digits",
    )
    train.add_argument(
        "--styled-digits",
        dest="styled_digits",
        type=float,
        help="continental 1s and crossed 7s to train on, as a share of the training digits",
    )
    train.add_argument(
        "--elastic",
        type=float,
        help="share of training examples bent by a smooth random warp (Simard et al. 2003)",
    )
    train.add_argument(
        "--pen-width",
        dest="pen_width",
        type=float,
        help="share of training examples drawn with a thicker or thinner pen",
    )
    train.add_argument(
        "--prepared-share",
        dest="prepared_share",
        type=float,
        help="share of training digits shown as the Draw page prepares a drawing",
    )
    train.add_argument("--name", help="run name (default: preset and time)")
    train.add_argument("--no-save", action="store_true", help="do not save the run")
    train.add_argument(
        "--no-optimizer",
        action="store_true",
        help="save the model file without the optimizer's state (a smaller file)",
    )

    train.add_argument("--redis-url", help="queue the job on this Redis for a worker to train")
    ev = sub.add_parser("evaluate", help="evaluate a saved run on the test set")
    ev.add_argument("run")
    for p in (train, ev):
        p.add_argument("--data-dir", help="folder with the MNIST IDX files or mnist.npz")
        p.add_argument("--runs-dir", default=os.environ.get("DIGITLAB_RUNS_DIR", "runs"))
    add_runs_command(sub)
    add_predict_command(sub)
    worker = sub.add_parser("worker", help="train queued jobs from Redis (RQ worker)")
    worker.add_argument(
        "--redis-url", default=os.environ.get("DIGITLAB_REDIS_URL") or "redis://localhost:6379/0"
    )
    worker.add_argument("--burst", action="store_true", help="quit once the queue is empty")
    worker.add_argument("--name", help="the worker's name (default: host-pid)")
    worker.add_argument("--threads", type=int, help="TensorFlow threads per job (default: all)")
    worker.add_argument("--data-dir", help="folder with the MNIST IDX files or mnist.npz")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return cmd_worker(args)
    if hasattr(args, "func"):
        return args.func(args)
    return cmd_train(args) if args.command == "train" else cmd_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
