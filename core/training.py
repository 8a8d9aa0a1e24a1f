"""Background training: a job runs model.fit on a worker thread, the UI polls its progress.

The worker never touches Streamlit. Errors cross the thread boundary as data (the job's state and
message). A process-wide JobRegistry limits how many jobs train at once; the others wait in order.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
import traceback
import uuid
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import keras
import numpy as np

from core.checkpoints import CheckpointStore
from core.data import NOT_A_DIGIT, MnistData, make_dataset, preprocess_images, validation_split
from core.memory import release_memory
from core.models import ModelConfig, build_model, make_callbacks, make_optimizer
from core.non_digits import make_non_digits, prepared_digits
from core.records import batch_record
from core.runs import RunError
from core.strokes import restyle

log = logging.getLogger(__name__)

PREPARING = "Preparing: loading data, building the model…"
TRAINING = "Training…"
PROBE_COUNT = 12
RATE_WINDOW = 50
KEEP_FINISHED = 20
"""Ended jobs the registry remembers (their figures only, at most a few MB each: the 10-epoch
tutorial's 18,750 batches of 7 series are 1 MB); older ones are forgotten as new ones come."""


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        """True for the states a job never leaves."""
        return self in (JobState.STOPPED, JobState.FINISHED, JobState.FAILED)


class NanLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class ProgressSnapshot:
    """A consistent copy of a job's progress, safe to read from the UI thread."""

    state: JobState
    message: str
    epoch: int
    epochs: int
    batch: int
    steps_per_epoch: int
    batch_history: dict[str, list[float]]
    epoch_history: dict[str, list[float]]
    elapsed: float
    images_per_second: float
    eta_seconds: float | None
    probe_predictions: list[np.ndarray]
    queue_position: int | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    run_name: str | None = None
    early_stopping: dict | None = None
    """What early stopping did (see TrainingJob.early_stopping), once training has ended."""

    @property
    def epochs_done(self) -> float:
        """Epochs of training behind the last epoch record: 1.4 when stopped 40% into epoch 2."""
        done = self.epoch_history.get("epochs_done") or self.epoch_history.get("epoch") or [0.0]
        return float(done[-1])

    @property
    def fraction(self) -> float:
        """How much of the planned training is done, 0 to 1."""
        total = self.epochs * self.steps_per_epoch
        done = (self.epoch - 1) * self.steps_per_epoch + self.batch if self.epoch else 0
        return 0.0 if total == 0 else min(1.0, max(0.0, done / total))

    def to_dict(self) -> dict:
        """Plain JSON-able dict, so a snapshot can travel (from an RQ worker through Redis)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["state"] = self.state.value
        d["batch_history"] = {k: list(v) for k, v in self.batch_history.items()}
        d["epoch_history"] = {k: list(v) for k, v in self.epoch_history.items()}
        d["test_metrics"] = dict(self.test_metrics)
        d["probe_predictions"] = [
            np.asarray(p, dtype=np.float32).tolist() for p in self.probe_predictions
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ProgressSnapshot:
        """Inverse of to_dict; unknown keys are ignored (a newer worker may send more)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["state"] = JobState(values["state"])
        values["probe_predictions"] = [
            np.asarray(p, dtype=np.float32) for p in values.get("probe_predictions", [])
        ]
        return cls(**values)


class Progress:
    """Thread-safe record of per-batch and per-epoch figures, written by the training callback."""

    def __init__(self, epochs: int = 0, steps_per_epoch: int = 0):
        self._lock = threading.Lock()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.reset()

    def reset(self) -> None:
        """Forget every figure (a new training run)."""
        with self._lock:
            self._batch: dict[str, list[float]] = {}
            self._epoch: dict[str, list[float]] = {}
            self._probes: list[np.ndarray] = []
            self._epoch_now = 0
            self._batch_now = 0
            self._start = time.perf_counter()
            self._end: float | None = None
            self._rate_times: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)
            self._images = 0
            self._before = 0.0

    def start_clock(self) -> None:
        """Training begins now (time spent queued or building does not count)."""
        with self._lock:
            self._start = time.perf_counter()
            self._end = None

    def restore(
        self,
        batch: dict[str, list[float]],
        epoch: dict[str, list[float]],
        seconds_before: float = 0.0,
    ) -> None:
        """Carry on from a checkpoint's records (its training time counts too)."""
        with self._lock:
            self._batch = {k: list(v) for k, v in batch.items()}
            self._epoch = {k: list(v) for k, v in epoch.items()}
            self._before = float(seconds_before)
            steps = self._batch.get("step", [])
            self._epoch_now = int(self._epoch["epoch"][-1]) if self._epoch.get("epoch") else 0
            self._batch_now = int(self._batch["batch_in_epoch"][-1]) if steps else 0

    def has_batches(self) -> bool:
        """Whether any batch has been recorded (a resumed job's earlier ones count)."""
        with self._lock:
            return bool(self._batch.get("step"))

    def records(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Copies of the raw per-batch and per-epoch records (for a checkpoint)."""
        with self._lock:
            return (
                {k: list(v) for k, v in self._batch.items()},
                {k: list(v) for k, v in self._epoch.items()},
            )

    def stop_clock(self) -> None:
        """Training ended now."""
        with self._lock:
            self._end = time.perf_counter()

    def record_batch(self, epoch: int, batch: int, step: int, images: int, logs: dict) -> None:
        """One finished batch: its loss, accuracy, learning rate and the running throughput."""
        now = time.perf_counter()
        with self._lock:
            self._epoch_now, self._batch_now = epoch, batch
            self._images += images
            self._rate_times.append((now, self._images))
            self._batch.setdefault("step", []).append(float(step))
            self._batch.setdefault("batch_in_epoch", []).append(float(batch))
            self._batch.setdefault("seconds", []).append(now - self._start)
            self._batch.setdefault("images", []).append(float(images))
            for key, value in logs.items():
                self._batch.setdefault(key, []).append(float(value))

    def record_epoch(self, epoch: int, logs: dict) -> None:
        """One finished epoch, with its validation figures when there are any."""
        with self._lock:
            self._epoch.setdefault("epoch", []).append(float(epoch))
            self._epoch.setdefault("seconds", []).append(time.perf_counter() - self._start)
            for key, value in logs.items():
                self._epoch.setdefault(key, []).append(float(value))

    def record_probes(self, probabilities: np.ndarray) -> None:
        """The model's current guesses for the fixed probe digits."""
        with self._lock:
            self._probes.append(np.asarray(probabilities, dtype=np.float32))

    def compact(self) -> None:
        """Keep the figures as arrays of doubles (8 bytes a value instead of a float's 32): a
        finished job's progress stays readable for as long as the registry keeps it."""
        with self._lock:
            for series in (self._batch, self._epoch):
                for key, values in series.items():
                    series[key] = array("d", values)

    def batches_done(self) -> int:
        """How many batches have been recorded."""
        with self._lock:
            return len(self._batch.get("step", []))

    def elapsed(self) -> float:
        """Seconds of training so far (or in total, once ended), a resumed job's earlier ones too."""
        with self._lock:
            return self._before + (self._end or time.perf_counter()) - self._start

    def snapshot(self, state: JobState, message: str, **extra) -> ProgressSnapshot:
        """Copy everything under the lock, and work out throughput and time left."""
        with self._lock:
            elapsed = self._before + (self._end or time.perf_counter()) - self._start
            rate = 0.0
            if len(self._rate_times) >= 2:
                (t0, n0), (t1, n1) = self._rate_times[0], self._rate_times[-1]
                rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
            done_steps = len(self._batch.get("step", []))
            total_steps = self.epochs * self.steps_per_epoch
            eta = None
            if done_steps and not state.done and rate > 0 and len(self._rate_times) >= 2:
                # Time left at the recent pace: the first batches (tracing, warming caches) are
                # slower than the rest, and an average over them overstates what is left.
                (t0, _), (t1, _) = self._rate_times[0], self._rate_times[-1]
                per_step = (t1 - t0) / (len(self._rate_times) - 1)
                eta = max(0.0, (total_steps - done_steps) * per_step)
            return ProgressSnapshot(
                state=state,
                message=message,
                epoch=self._epoch_now,
                epochs=self.epochs,
                batch=self._batch_now,
                steps_per_epoch=self.steps_per_epoch,
                batch_history=_per_batch_values(self._batch),
                epoch_history={k: list(v) for k, v in self._epoch.items()},
                elapsed=elapsed,
                images_per_second=rate,
                eta_seconds=eta,
                probe_predictions=list(self._probes),
                **extra,
            )


RUNNING_MEANS = ("loss", "accuracy")


def _per_batch_values(batch: dict[str, list[float]]) -> dict[str, list[float]]:
    """Batch history in step order, with each batch's own loss and accuracy.

    Keras logs running means over the epoch, weighted by samples; with n_k samples seen by batch
    k, batch k's own value is (n_k*m_k - n_(k-1)*m_(k-1)) / (n_k - n_(k-1)). Equal batches give
    k*m_k - (k-1)*m_(k-1); a short last batch must not be read as a full one.
    """
    if not batch.get("step"):
        return {k: list(v) for k, v in batch.items()}
    order = np.argsort(np.asarray(batch["step"]), kind="stable")
    out = {k: np.asarray(v, dtype=np.float64)[order] for k, v in batch.items()}
    k = out["batch_in_epoch"]
    size = out.get("images")
    if size is None or len(size) != len(k) or not (size > 0).all():
        size = np.ones_like(k)
    # Samples seen in the epoch up to and including each batch.
    first = np.maximum.accumulate(np.where(k == 1, np.arange(len(k)), 0))
    seen = np.cumsum(size)
    seen = seen - np.where(first > 0, seen[first - 1], 0.0)
    for key in RUNNING_MEANS:
        if key in out and len(out[key]) == len(k):
            mean = out[key]
            previous = np.where(k > 1, np.concatenate([[0.0], mean[:-1]]), 0.0)
            out[key] = (seen * mean - (seen - size) * previous) / size
    return {key: v.tolist() for key, v in out.items()}


class ProgressCallback(keras.callbacks.Callback):
    """Writes per-batch and per-epoch figures into a Progress; stops when the stop flag is up.

    It is async-safe, so Keras runs its batch hook off the training loop's critical path.
    """

    async_safe = True

    def __init__(
        self,
        progress: Progress,
        stop_event: threading.Event,
        batch_size: int,
        probe_images: np.ndarray | None = None,
        terminate_on_nan: bool = True,
        steps_per_epoch: int = 0,
        samples: int = 0,
    ):
        super().__init__()
        self.progress = progress
        self.stop_event = stop_event
        self.batch_size = batch_size
        self.probe_images = probe_images
        self.terminate_on_nan = terminate_on_nan
        self.steps_per_epoch = steps_per_epoch
        self.samples = samples

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = 0
        self.nan_at: tuple[int, int] | None = None
        self.progress.start_clock()
        self._record_probes()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        step = (self.epoch - 1) * self.steps_per_epoch + batch + 1
        logs = dict(logs, learning_rate=self._learning_rate())
        self.progress.record_batch(self.epoch, batch + 1, step, self._batch_images(batch), logs)
        loss = logs.get("loss")
        if self.terminate_on_nan and loss is not None and not math.isfinite(loss):
            self.nan_at = (self.epoch, batch + 1)
            self.model.stop_training = True
        if self.stop_event.is_set():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(
            logs or {}, learning_rate=self._learning_rate(), epochs_done=self._epochs_done()
        )
        if self.nan_at is None:
            self.progress.record_epoch(epoch + 1, logs)
            self._record_probes()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.progress.stop_clock()

    def _batch_images(self, batch: int) -> int:
        """The batch's size: the last batch of an epoch holds what is left of the samples."""
        if self.samples and batch + 1 == self.steps_per_epoch:
            return self.samples - (self.steps_per_epoch - 1) * self.batch_size
        return self.batch_size

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _epochs_done(self) -> float:
        """Epochs trained so far, a fraction when a stop cut the epoch short (Keras still ends it)."""
        if not self.steps_per_epoch:
            return float(self.epoch)
        return round(self.progress.batches_done() / self.steps_per_epoch, 4)

    def _record_probes(self) -> None:
        if self.probe_images is not None and len(self.probe_images):
            probs = self.model(self.probe_images, training=False)
            self.progress.record_probes(keras.ops.convert_to_numpy(probs))


def probe_indices(labels: np.ndarray, count: int = PROBE_COUNT) -> np.ndarray:
    """A fixed, readable set of test digits: the first of each class, then the next ones."""
    labels = np.asarray(labels)
    picked: list[int] = []
    for digit in range(10):
        hits = np.flatnonzero(labels == digit)
        if len(hits):
            picked.append(int(hits[0]))
    chosen = set(picked)
    rest = (i for i in range(len(labels)) if i not in chosen)
    picked.extend(itertools.islice(rest, max(0, count - len(picked))))
    return np.array(picked[:count], dtype=np.int64)


class TrainingJob:
    """One training run on a worker thread: queued, running, stopping, then stopped/finished/failed."""

    def __init__(
        self,
        config: ModelConfig,
        data: MnistData,
        store=None,
        run_name: str | None = None,
        extra_examples: tuple[np.ndarray, np.ndarray] | None = None,
        owner: str | None = None,
        save_stopped: bool = True,
        resume: str | None = None,
        start_from=None,
        checkpoint_saved: Callable[[str], None] | None = None,
        job_id: str | None = None,
    ):
        """resume: the id of a checkpoint to carry on from (config is the checkpoint's);
        start_from: a RunInfo whose model trains config.epochs epochs more."""
        config.validate(len(data.x_train))
        self.id = resume or job_id or f"job-{uuid.uuid4().hex[:10]}"
        self.resume, self.start_from = resume, start_from
        self.checkpoint_saved = checkpoint_saved
        self.checkpoints = CheckpointStore(store.root) if store is not None else None
        before = self._earlier(resume, start_from)
        self.initial_epoch = len(before[1].get("epoch", []))
        self.total_epochs = config.epochs + (self.initial_epoch if start_from else 0)
        if resume and extra_examples is None:
            extra_examples = self.checkpoints.load_examples(resume)
        self.config = config
        self.data = data
        self.store = store
        self.requested_name = run_name
        self.extra_examples = extra_examples
        self.owner = owner
        self.save_stopped = save_stopped
        self.created_at = time.time()
        self.probe_index = probe_indices(data.y_test)
        self.probe_labels = data.y_test[self.probe_index]
        extra = len(extra_examples[0]) if extra_examples else 0
        self.train_count, _ = config.split_sizes(len(data.x_train), extra)
        self.steps_per_epoch = config.steps_per_epoch(len(data.x_train), extra)
        self.progress = Progress(self.total_epochs, self.steps_per_epoch)
        self.progress.restore(*before[:2], seconds_before=before[2])
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = JobState.QUEUED
        self._message = "Waiting for a free training slot."
        self._traceback = ""
        self._thread: threading.Thread | None = None
        self._registry: JobRegistry | None = None
        self.model = None
        self.test_metrics: dict[str, float] = {}
        self.run_name: str | None = None
        self.train_seconds = 0.0
        self.early_stopping: dict | None = None

    def _earlier(self, resume, start_from) -> tuple[dict, dict, float]:
        """(per-batch, per-epoch, seconds) already trained: a checkpoint's or a run's."""
        if resume:
            checkpoint = self.checkpoints.get(resume)
            batch, epoch = self.checkpoints.load_progress(resume)
            return batch, epoch, checkpoint.train_seconds
        if start_from is not None:
            history = {k: list(v) for k, v in start_from.history.items() if isinstance(v, list)}
            return {}, history, float(start_from.meta.get("train_seconds") or 0.0)
        return {}, {}, 0.0

    @property
    def saved_config(self) -> ModelConfig:
        """The configuration the run records: all its epochs, a continued run's earlier ones too."""
        return dataclasses.replace(self.config, epochs=self.total_epochs)

    # ----- public -------------------------------------------------------------------------
    @property
    def state(self) -> JobState:
        """The job's current state."""
        with self._lock:
            return self._state

    @property
    def message(self) -> str:
        """What the job is doing, or why it ended, in words."""
        with self._lock:
            return self._message

    @property
    def traceback(self) -> str:
        """The worker's traceback when the job failed, else empty."""
        return self._traceback

    def start(self, registry: JobRegistry | None = None) -> TrainingJob:
        """Queue the job in registry (a private one-slot registry when None) and return it."""
        (registry or JobRegistry(max_concurrent=1)).submit(self)
        return self

    def stop(self) -> None:
        """Ask the job to end at the next batch, keeping what it learned."""
        self._stop.set()
        with self._lock:
            if self._state == JobState.RUNNING:
                self._state = JobState.STOPPING
                self._message = "Stopping after the current batch…"
        if self._registry is not None:
            self._registry.wake()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended; True if it did within timeout."""
        return self._done.wait(timeout)

    def snapshot(self) -> ProgressSnapshot:
        """The job's progress and state, copied for the UI."""
        position = self._registry.queue_position(self) if self._registry else None
        with self._lock:
            state, message = self._state, self._message
        if message == TRAINING and not self.progress.has_batches():
            message = PREPARING  # until the first batch: tracing the step takes a moment
        return self.progress.snapshot(
            state,
            message,
            queue_position=position,
            test_metrics=dict(self.test_metrics),
            run_name=self.run_name,
            early_stopping=self.early_stopping,
        )

    # ----- worker -------------------------------------------------------------------------
    def _set(self, state: JobState, message: str) -> None:
        if state == JobState.RUNNING and self._stop.is_set():
            state = JobState.STOPPING
        with self._lock:
            self._state, self._message = state, message

    def run(self) -> None:
        """Train, evaluate and save now, on the calling thread; never raises (a failure becomes
        the job's state). An RQ work horse calls it; the in-process engine's threads call _run."""
        try:
            self._guarded_train()
        finally:
            self._done.set()

    def _guarded_train(self) -> None:
        try:
            self._train()
        except Exception as exc:  # noqa: BLE001 - every failure becomes the job's state
            self._traceback = traceback.format_exc()
            log.exception("Training job %s failed", self.id)
            self._set(JobState.FAILED, _describe(exc))

    def _run(self) -> None:
        """The worker thread: wait for a slot, train, evaluate, save; never raises."""
        registry = self._registry
        try:
            if not registry.acquire(self):
                self._set(JobState.STOPPED, "Stopped before it started; nothing was trained.")
                return
            try:
                self._guarded_train()
            finally:
                registry.release(self)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the job's state
            self._traceback = traceback.format_exc()
            log.exception("Training job %s failed", self.id)
            self._set(JobState.FAILED, _describe(exc))
        finally:
            try:
                self._release()
            finally:
                self._done.set()

    def _release(self) -> None:
        """An ended job keeps its figures, not its model: the saved run is what was learned (the
        model stays only when there is no store to save it in)."""
        if self.store is not None:
            self.model = None
        self.progress.compact()
        # The fitted model lives in reference cycles: collect them now rather than whenever
        # Python's collector gets round to it, and return the freed heap. Measured in process (3
        # short jobs): with oneDNN on the system allocator and two glibc arenas (core.memory), the
        # process grew 779, 780, 791 MB after each, against 828, 846, 867 MB with many arenas.
        release_memory()

    def _datasets(self):
        cfg = self.config
        x = self.data.x_train[: cfg.samples(len(self.data.x_train))]
        y = self.data.y_train[: len(x)]
        x_tr, y_tr, x_val, y_val = validation_split(x, y, cfg.validation_split)
        # Each training example as MNIST has it and, when a share is shown prepared, as the Draw
        # page would prepare it (computed once per process).
        share = cfg.prepared_share
        parts = [(x_tr, y_tr, prepared_digits(x)[: len(x_tr)] if share else None)]
        count = cfg.not_digit_count(len(x_tr))
        if count:
            # Made-up non-digits from the training digits alone (the hold-out stays unseen).
            negatives = make_non_digits(x_tr, y_tr, count, cfg.seed)
            labels = np.full(count, NOT_A_DIGIT, np.uint8)
            parts.append((negatives, labels, prepared_digits(negatives) if share else None))
        count = cfg.styled_count(len(x_tr))
        if count:
            # Continental 1s and crossed 7s, made from the training digits' own 1s and 7s.
            styled, labels = restyle(x_tr, y_tr, count, cfg.seed)
            parts.append((styled, labels, prepared_digits(styled) if share else None))
        if self.extra_examples is not None and len(self.extra_examples[0]):
            # The visitor's labelled drawings always train (the page prepared them already);
            # the hold-out stays MNIST's.
            drawn = self.extra_examples[0].astype(np.uint8)
            parts.append((drawn, self.extra_examples[1].astype(np.uint8), drawn))
        x_tr = np.concatenate([p[0] for p in parts])
        y_tr = np.concatenate([p[1] for p in parts])
        forms = {}
        if share:
            forms = {"prepared": np.concatenate([p[2] for p in parts]), "prepared_share": share}
        train = make_dataset(
            x_tr,
            y_tr,
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            elastic=cfg.elastic,
            pen_width=cfg.pen_width,
            **forms,
        )
        val = make_dataset(x_val, y_val, 1000) if len(x_val) else None
        return train, val

    def _train(self) -> None:
        cfg = self.config
        self._set(JobState.RUNNING, PREPARING)
        if self._stop.is_set():
            self._set(JobState.STOPPED, "Stopped before training began; nothing was trained.")
            return
        self.model = self._model()
        _no_single_replica_all_reduce(self.model.optimizer)
        train, val = self._datasets()
        callback = ProgressCallback(
            self.progress,
            self._stop,
            batch_size=cfg.batch_size,
            probe_images=preprocess_images(self.data.x_test[self.probe_index]),
            terminate_on_nan=cfg.terminate_on_nan,
            steps_per_epoch=self.steps_per_epoch,
            samples=self.train_count,
        )
        if not self._stop.is_set():
            self._set(JobState.RUNNING, TRAINING)
        extra = make_callbacks(cfg)
        saving = [CheckpointCallback(self)] if cfg.checkpoint and self.checkpoints else []
        self.model.fit(
            train,
            initial_epoch=self.initial_epoch,
            epochs=self.total_epochs,
            validation_data=val,
            callbacks=[callback, *extra, *saving],
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=0,
        )
        self.train_seconds = self.progress.elapsed()
        self.early_stopping = early_stopping_record(extra)
        if callback.nan_at is not None:
            epoch, batch = callback.nan_at
            raise NanLossError(
                f"The loss became NaN at epoch {epoch}, batch {batch}: training diverged. "
                "Lower the learning rate (or turn on batch normalization) and try again."
            )
        stopped = self._stop.is_set()
        trained = len(self.progress.snapshot(JobState.RUNNING, "").batch_history.get("step", []))
        if stopped and (trained == 0 or not self.save_stopped):
            self._set(JobState.STOPPED, "Stopped before the first batch; nothing to save.")
            return
        self._set(JobState.STOPPING if stopped else JobState.RUNNING, "Evaluating on the test set…")
        from core.evaluation import evaluate

        result = evaluate(self.model, self.data.x_test, self.data.y_test)
        self.test_metrics = {"test_loss": result.loss, "test_accuracy": result.accuracy}
        status = "stopped" if stopped else "finished"
        snap = self.progress.snapshot(JobState.RUNNING, "")
        history = snap.epoch_history
        if self.store is not None:
            self._set(JobState.STOPPING if stopped else JobState.RUNNING, "Saving the run…")
            info = self.store.save_run(
                self.model,
                self.saved_config,
                # Old readers look only at the per-epoch lists and skip "per_batch".
                history=dict(
                    history, per_batch=batch_record(snap.batch_history, snap.steps_per_epoch)
                ),
                metrics=self.test_metrics,
                meta={
                    "status": status,
                    "train_seconds": round(self.train_seconds, 2),
                    "epochs_completed": len(history.get("epoch", [])),
                    "epochs_trained": snap.epochs_done,
                    "early_stopping": self.early_stopping,
                    "data_source": self.data.label,
                    "train_samples": cfg.samples(len(self.data.x_train)),
                    "user_examples": 0
                    if self.extra_examples is None
                    else len(self.extra_examples[0]),
                    "started_at": self.created_at,
                    "owner": self.owner,
                    "continued_from": self.start_from.name if self.start_from else None,
                    "resumed": bool(self.resume),
                },
                name=self.requested_name,
            )
            self.run_name = info.name
            self.checkpoints.delete(self.id)
        accuracy = f"{result.accuracy:.2%}"
        epochs_run = len(history.get("epoch", []))
        early = early_stopping_text(self.early_stopping, cfg.epochs, epochs_run)
        early = f" {early}" if early else ""
        if stopped:
            saved = f" Saved as run '{self.run_name}' (stopped)." if self.run_name else ""
            self._set(
                JobState.STOPPED,
                f"Ended early, keeping what it learned: test accuracy {accuracy}.{early}{saved}",
            )
        else:
            saved = f" Saved as run '{self.run_name}'." if self.run_name else ""
            self._set(JobState.FINISHED, f"Test accuracy {accuracy}.{early}{saved}")

    def _model(self):
        """The network to train: a checkpoint's, a run's to train further, or a new one."""
        if self.resume:
            return self.checkpoints.load_model(self.resume)
        if self.start_from is not None:
            model = self.store.load_model(self.start_from.name)
            # A fresh optimizer and schedule over the epochs to come: the run's own schedule
            # has already annealed its learning rate to almost nothing.
            model.compile(
                loss="categorical_crossentropy",
                optimizer=make_optimizer(self.config, self.steps_per_epoch),
                metrics=["accuracy"],
            )
            return model
        return build_model(self.config, steps_per_epoch=self.steps_per_epoch)

    def save_checkpoint(self, epochs_done: int) -> None:
        """After an epoch: the model and the records so far, for Resume after a restart."""
        batch, epoch = self.progress.records()
        state = {
            "config": self.saved_config.to_dict(),
            "owner": self.owner,
            "epochs_done": epochs_done,
            "train_seconds": self.progress.elapsed(),
            "created_at": self.created_at,
            "run_name": self.requested_name,
            "data_source": self.data.label,
        }
        try:
            self.checkpoints.save(self.id, self.model, batch, epoch, state, self.extra_examples)
        except RunError as exc:
            log.warning("Job %s: %s", self.id, exc)
            return
        if self.checkpoint_saved is not None:
            self.checkpoint_saved(self.id)


def early_stopping_record(callbacks: list) -> dict | None:
    """What an EarlyStopping callback did in the last fit: the epoch it fired (0 if it did not),
    the best epoch and whether its weights were restored; 1-based epochs, None without one."""
    stopper = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
    if stopper is None:
        return None
    restored = bool(stopper.restore_best_weights and stopper.best_weights is not None)
    best = None if stopper.best is None else float(stopper.best)
    return {
        "monitor": stopper.monitor,
        "patience": int(stopper.patience),
        "stopped_epoch": int(stopper.stopped_epoch) + 1 if stopper.stopped_epoch > 0 else 0,
        "best_epoch": int(stopper.best_epoch) + 1 if best is not None else 0,
        "best_value": best,
        "restored": restored,
    }


def early_stopping_text(record: dict | None, epochs: int, epochs_run: int) -> str:
    """One sentence on what early stopping did (of `epochs` planned, `epochs_run` begun), or ""
    when it changed nothing."""
    if not record:
        return ""
    monitor = str(record.get("monitor", "val_loss")).replace("val_", "validation ")
    best, stopped = record.get("best_epoch", 0), record.get("stopped_epoch", 0)
    kept = f"; the weights of epoch {best}, its best, were kept" if record.get("restored") else ""
    if stopped:
        return (
            f"Early stopping ended training after epoch {stopped} of {epochs}: the {monitor} "
            f"had not improved for {record.get('patience')} epochs{kept}."
        )
    if record.get("restored") and 0 < best < epochs_run:
        return f"Early stopping did not fire{kept} (of {epochs_run})."
    return ""


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the job's checkpoint after every epoch (after ProgressCallback has recorded it)."""

    def __init__(self, job: TrainingJob):
        super().__init__()
        self.job = job

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.job._stop.is_set():
            self.job.save_checkpoint(epoch + 1)


def _no_single_replica_all_reduce(optimizer) -> None:
    """Skip the all-reduce of gradients that Keras's TensorFlow optimizer does for distribution.

    With one replica it is an identity, but it is a tf.custom_gradient: every trace of the train
    step registers a gradient function in TensorFlow's process-wide registry, which is never
    removed and keeps the whole traced step (and what it captured) alive. Measured: each job left
    two such entries and grew the server by 6-12 MB (bench_memory.py: +82 MB over 10 jobs);
    without the all-reduce, +5 MB over 10 jobs.
    """
    import tensorflow as tf

    if tf.distribute.get_strategy().num_replicas_in_sync == 1 and hasattr(
        optimizer, "_all_reduce_sum_gradients"
    ):
        optimizer._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)


def _describe(exc: BaseException) -> str:
    """A user-facing message for an exception from the worker."""
    if isinstance(exc, NanLossError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return (
            "Out of memory while training: use fewer samples, a smaller batch or a smaller network."
        )
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"Training failed: {type(exc).__name__}: {first}"[:500]


class JobRegistry:
    """Process-wide list of jobs; at most max_concurrent train at once, the others wait in order."""

    def __init__(self, max_concurrent: int = 1, keep: int = KEEP_FINISHED):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1.")
        self.max_concurrent = max_concurrent
        self.keep = keep
        self._cond = threading.Condition()
        self._jobs: list[TrainingJob] = []
        self._waiting: list[TrainingJob] = []
        self._running: set[str] = set()

    def submit(self, job: TrainingJob) -> TrainingJob:
        """Add a job to the end of the queue and start its worker thread."""
        with self._cond:
            job._registry = self
            self._jobs.append(job)
            self._waiting.append(job)
            finished = [j for j in self._jobs if j.state.done]
            for old in finished[: max(0, len(self._jobs) - self.keep)]:
                self._jobs.remove(old)
        job._thread = threading.Thread(target=job._run, name=job.id, daemon=True)
        job._thread.start()
        return job

    def acquire(self, job: TrainingJob) -> bool:
        """Block until job is first in line and a slot is free; False if it was stopped first."""
        with self._cond:
            while True:
                if job._stop.is_set():
                    self._waiting.remove(job)
                    self._cond.notify_all()
                    return False
                if self._waiting[0] is job and len(self._running) < self.max_concurrent:
                    self._waiting.pop(0)
                    self._running.add(job.id)
                    self._cond.notify_all()
                    return True
                self._cond.wait(timeout=1.0)

    def release(self, job: TrainingJob) -> None:
        """The job no longer trains: give its slot to the next in line."""
        with self._cond:
            self._running.discard(job.id)
            self._cond.notify_all()

    def wake(self) -> None:
        """Let waiting jobs re-check their stop flags."""
        with self._cond:
            self._cond.notify_all()

    def queue_position(self, job: TrainingJob) -> int | None:
        """1 for the next job to start, 2 for the one after; None when not waiting."""
        with self._cond:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    def jobs(self, owner: str | None = None) -> list[TrainingJob]:
        """Known jobs, newest first (only owner's when given)."""
        with self._cond:
            jobs = list(reversed(self._jobs))
        return [j for j in jobs if owner is None or j.owner == owner]

    def get(self, job_id: str) -> TrainingJob | None:
        """A job by id, or None."""
        with self._cond:
            return next((j for j in self._jobs if j.id == job_id), None)

    def active(self) -> list[TrainingJob]:
        """Jobs that are queued, running or stopping."""
        return [j for j in self.jobs() if not j.state.done]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job and wait for their threads (tests, process exit)."""
        for job in self.jobs():
            job.stop()
        deadline = time.monotonic() + timeout
        for job in self.jobs():
            if job._thread is not None:
                job._thread.join(max(0.0, deadline - time.monotonic()))
