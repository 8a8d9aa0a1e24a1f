"""core.training: the progress callback on made-up logs, then real tiny jobs (stop, queue, failure)."""

import dataclasses
import math
import threading
import time

import keras
import numpy as np
import pytest

from core import training
from core.runs import RunStore
from core.training import JobRegistry, JobState, Progress, ProgressCallback, TrainingJob


class FakeOptimizer:
    learning_rate = 0.01


class FakeModel:
    """What the callback touches: stop_training, the optimizer and a call for the probes."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = FakeOptimizer()

    def __call__(self, x, training=False):
        return np.full((len(x), 10), 0.1, np.float32)


def drive(callback, batches_per_epoch, epochs, losses):
    callback.set_model(FakeModel())
    callback.on_train_begin()
    it = iter(losses)
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for batch in range(batches_per_epoch):
            callback.on_train_batch_end(batch, {"loss": next(it), "accuracy": 0.5})
        callback.on_epoch_end(epoch, {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.1})
    callback.on_train_end()
    return callback


def test_callback_records_dicts_of_lists_like_history():
    progress = Progress(epochs=2, steps_per_epoch=3)
    cb = ProgressCallback(progress, threading.Event(), 32, np.zeros((2, 28, 28, 1)), True, 3)
    drive(cb, 3, 2, [2.0, 1.5, 1.0, 0.9, 0.8, 0.7])
    snap = progress.snapshot(JobState.FINISHED, "done")
    assert snap.batch_history["step"] == [1, 2, 3, 4, 5, 6]
    # Keras logs running means; the snapshot gives each batch's own loss: k*m_k - (k-1)*m_(k-1).
    assert snap.batch_history["loss"] == pytest.approx([2.0, 1.0, 0.0, 0.9, 0.7, 0.5])
    assert snap.epoch_history["epoch"] == [1, 2] and snap.epoch_history["val_loss"] == [1.1, 1.1]
    assert snap.batch_history["learning_rate"] == [0.01] * 6
    assert len(snap.probe_predictions) == 3  # before training and after each epoch
    assert snap.fraction == 1.0 and snap.eta_seconds is None


def test_stop_event_stops_training_and_nan_is_flagged():
    stop = threading.Event()
    cb = ProgressCallback(Progress(1, 4), stop, 32, None, True, 4)
    cb.set_model(FakeModel())
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0, {"loss": 1.0})
    assert cb.model.stop_training is False
    stop.set()
    cb.on_train_batch_end(1, {"loss": 1.0})
    assert cb.model.stop_training is True
    cb2 = ProgressCallback(Progress(1, 4), threading.Event(), 32, None, True, 4)
    cb2.set_model(FakeModel())
    cb2.on_train_begin()
    cb2.on_epoch_begin(0)
    cb2.on_train_batch_end(0, {"loss": math.nan})
    assert cb2.model.stop_training and cb2.nan_at == (1, 1)


def test_eta_while_running():
    progress = Progress(epochs=2, steps_per_epoch=10)
    for step in range(1, 6):
        progress.record_batch(1, step, step, 32, {"loss": 1.0})
    snap = progress.snapshot(JobState.RUNNING, "")
    assert snap.fraction == pytest.approx(0.25)
    assert snap.eta_seconds is not None and snap.eta_seconds >= 0


@pytest.fixture
def registry():
    reg = JobRegistry(max_concurrent=1)
    yield reg
    reg.shutdown()


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_job_trains_evaluates_and_saves(mnist, tiny_config, registry, tmp_path):
    store = RunStore(tmp_path / "runs", default_dir=None)
    job = TrainingJob(tiny_config, mnist, store=store).start(registry)
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == JobState.FINISHED, snap.message
    assert len(snap.batch_history["step"]) == 2 * math.ceil(512 / 64)
    assert snap.epoch_history["epoch"] == [1, 2]
    assert 0.0 < snap.test_metrics["test_accuracy"] <= 1.0
    info = store.get(job.run_name)
    assert info.status == "finished" and info.test_accuracy == snap.test_metrics["test_accuracy"]
    assert info.history["epoch"] == [1, 2]


def test_stop_keeps_what_was_learned(mnist, tiny_config, registry, tmp_path):
    store = RunStore(tmp_path / "runs", default_dir=None)
    cfg = dataclasses.replace(tiny_config, epochs=50, train_samples=4000)
    job = TrainingJob(cfg, mnist, store=store).start(registry)
    wait_for(lambda: job.snapshot().batch_history.get("step"))
    job.stop()
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == JobState.STOPPED
    assert len(snap.epoch_history.get("epoch", [])) < 50
    assert store.get(job.run_name).status == "stopped"


def test_second_job_waits_in_the_queue(mnist, tiny_config, registry):
    first = TrainingJob(dataclasses.replace(tiny_config, epochs=50), mnist).start(registry)
    second = TrainingJob(tiny_config, mnist).start(registry)
    wait_for(lambda: first.state == JobState.RUNNING)
    snap = second.snapshot()
    assert snap.state == JobState.QUEUED and snap.queue_position == 1
    first.stop()
    assert second.wait(120)
    assert second.state == JobState.FINISHED
    assert registry.queue_position(second) is None


def test_stopping_a_queued_job_trains_nothing(mnist, tiny_config, registry):
    first = TrainingJob(dataclasses.replace(tiny_config, epochs=50), mnist).start(registry)
    second = TrainingJob(tiny_config, mnist).start(registry)
    second.stop()
    assert second.wait(30)
    assert second.state == JobState.STOPPED and not second.snapshot().batch_history
    first.stop()
    assert first.wait(60)


def test_worker_failure_is_captured_and_the_registry_goes_on(
    mnist, tiny_config, registry, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated out of memory in the worker")

    monkeypatch.setattr(training, "build_model", broken)
    bad = TrainingJob(tiny_config, mnist).start(registry)
    assert bad.wait(30)
    assert bad.state == JobState.FAILED
    assert "simulated out of memory" in bad.message and "RuntimeError" in bad.traceback
    monkeypatch.undo()
    good = TrainingJob(tiny_config, mnist).start(registry)
    assert good.wait(120) and good.state == JobState.FINISHED


def test_nan_loss_fails_with_the_reason(mnist, tiny_config, registry, monkeypatch):
    # A model whose loss is NaN from the first batch on, as a diverging one would report.
    real = training.build_model

    def diverging(*args, **kwargs):
        model = real(*args, **kwargs)
        model.compile(
            optimizer="sgd",
            loss=lambda y_true, y_pred: keras.ops.mean(y_pred) * np.nan,
            metrics=["accuracy"],
        )
        return model

    monkeypatch.setattr(training, "build_model", diverging)
    job = TrainingJob(dataclasses.replace(tiny_config, epochs=3), mnist).start(registry)
    assert job.wait(120)
    assert job.state == JobState.FAILED
    assert "NaN" in job.message and "learning rate" in job.message
    assert job.run_name is None
    # It stopped at once rather than running all three epochs.
    assert len(job.snapshot().batch_history["step"]) < 3 * 8
