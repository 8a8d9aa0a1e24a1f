"""core.training: the callback driven with made-up logs, then real jobs on a few hundred digits."""

import dataclasses
import gc
import math
import os
import subprocess
import sys
import threading
import time
import types
import weakref

import keras
import numpy as np
import pytest

from core import memory, training
from core.training import (
    JobRegistry,
    JobState,
    Progress,
    ProgressCallback,
    ProgressSnapshot,
    TrainingJob,
    probe_indices,
)
from tests.conftest import ROOT, TINY_CONFIG

# ----- layer 2a: the callback with made-up logs (no training) ------------------------------


class FakeOptimizer:
    learning_rate = 0.01


class FakeModel:
    """All the callback touches: stop_training, the optimizer's rate, and a call for the probes."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = FakeOptimizer()
        self.calls = 0

    def __call__(self, x, training=False):
        self.calls += 1
        return np.full((len(x), 10), 0.1, np.float32)


def running_means(values):
    """What Keras logs for a batch: the mean over the epoch so far."""
    return (np.cumsum(values) / np.arange(1, len(values) + 1)).tolist()


def make_callback(progress=None, stop=None, probes=None, terminate_on_nan=True, steps=3):
    callback = ProgressCallback(
        progress or Progress(epochs=2, steps_per_epoch=steps),
        stop or threading.Event(),
        batch_size=32,
        probe_images=probes,
        terminate_on_nan=terminate_on_nan,
        steps_per_epoch=steps,
    )
    callback.set_model(FakeModel())
    return callback


def run_epochs(callback, batch_losses, epoch_logs):
    """Drive the hooks as model.fit would, one list of per-batch losses per epoch."""
    callback.on_train_begin()
    for epoch, (losses, logs) in enumerate(zip(batch_losses, epoch_logs, strict=True)):
        callback.on_epoch_begin(epoch)
        for batch, (loss, acc) in enumerate(
            zip(running_means(losses), running_means([0.5] * len(losses)), strict=True)
        ):
            callback.on_train_batch_end(batch, {"loss": loss, "accuracy": acc})
            if callback.model.stop_training:
                break
        callback.on_epoch_end(epoch, logs)
        if callback.model.stop_training:
            break
    callback.on_train_end()


def test_callback_keeps_batch_and_epoch_series_as_dicts_of_lists():
    progress = Progress(epochs=2, steps_per_epoch=3)
    callback = make_callback(progress, probes=np.zeros((4, 28, 28, 1), np.float32))
    own = [[2.0, 1.0, 0.5], [0.8, 0.4, 0.3]]  # each batch's own loss
    run_epochs(
        callback,
        own,
        [{"loss": 1.1, "val_loss": 1.3, "val_accuracy": 0.6}, {"loss": 0.5, "val_loss": 0.9}],
    )
    snap = progress.snapshot(JobState.FINISHED, "done")
    batches, epochs = snap.batch_history, snap.epoch_history
    assert all(isinstance(v, list) for v in [*batches.values(), *epochs.values()])
    assert batches["step"] == [1, 2, 3, 4, 5, 6]
    assert batches["batch_in_epoch"] == [1, 2, 3, 1, 2, 3]
    # Keras logged running means; the series holds each batch's own loss again.
    assert batches["loss"] == pytest.approx(own[0] + own[1])
    assert batches["accuracy"] == pytest.approx([0.5] * 6)
    assert batches["learning_rate"] == [0.01] * 6
    assert batches["seconds"] == sorted(batches["seconds"])
    assert epochs["epoch"] == [1, 2]
    assert epochs["loss"] == [1.1, 0.5] and epochs["val_loss"] == [1.3, 0.9]
    assert epochs["val_accuracy"] == [0.6]  # only logged once: kept as given
    assert epochs["learning_rate"] == [0.01, 0.01]
    # Probe guesses before training and after each epoch.
    assert len(snap.probe_predictions) == 3 and callback.model.calls == 3
    assert all(p.shape == (4, 10) for p in snap.probe_predictions)
    assert (snap.epoch, snap.batch) == (2, 3) and snap.fraction == 1.0
    assert snap.eta_seconds is None  # a finished job has no time left


def test_stop_event_sets_stop_training_at_the_next_batch():
    stop = threading.Event()
    callback = make_callback(stop=stop, steps=4)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(0, {"loss": 1.0})
    assert callback.model.stop_training is False
    stop.set()
    callback.on_train_batch_end(1, {"loss": 1.0})
    assert callback.model.stop_training is True


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_is_flagged_and_stops(bad):
    progress = Progress(epochs=2, steps_per_epoch=3)
    callback = make_callback(progress)
    run_epochs(callback, [[1.0, bad, 1.0], [1.0, 1.0, 1.0]], [{"loss": 1.0}] * 2)
    assert callback.model.stop_training and callback.nan_at == (1, 2)
    snap = progress.snapshot(JobState.RUNNING, "")
    assert snap.batch_history["step"] == [1, 2]
    assert "epoch" not in snap.epoch_history  # a diverged epoch is not recorded

    # on_train_begin resets per-run state, so the same callback can be used again.
    callback.model.stop_training = False
    run_epochs(callback, [[1.0] * 3, [1.0] * 3], [{"loss": 1.0}] * 2)
    assert callback.nan_at is None and not callback.model.stop_training


def test_nan_is_ignored_when_terminate_on_nan_is_off():
    callback = make_callback(terminate_on_nan=False)
    run_epochs(callback, [[1.0, math.nan, 1.0], [1.0] * 3], [{"loss": 1.0}] * 2)
    assert callback.nan_at is None and not callback.model.stop_training


def test_snapshot_fraction_rate_and_eta_on_a_fake_clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(
        training, "time", types.SimpleNamespace(perf_counter=lambda: now[0], time=time.time)
    )
    progress = Progress(epochs=2, steps_per_epoch=10)
    assert progress.snapshot(JobState.QUEUED, "").fraction == 0.0
    for step in range(1, 6):  # one batch of 32 images every half second
        now[0] = 100.0 + 0.5 * step
        progress.record_batch(1, step, step, 32, {"loss": 1.0})
    snap = progress.snapshot(JobState.RUNNING, "")
    assert snap.fraction == pytest.approx(5 / 20)
    assert snap.elapsed == pytest.approx(2.5)
    assert snap.images_per_second == pytest.approx((5 - 1) * 32 / 2.0)  # 64 images/s
    assert snap.eta_seconds == pytest.approx((20 - 5) * 2.5 / 5)  # 7.5 s left
    for step in range(1, 6):
        now[0] += 0.5
        progress.record_batch(2, step, 10 + step, 32, {"loss": 1.0})
    assert progress.snapshot(JobState.RUNNING, "").fraction == pytest.approx(15 / 20)
    progress.stop_clock()
    now[0] += 100.0
    done = progress.snapshot(JobState.FINISHED, "")
    assert done.eta_seconds is None and done.elapsed == pytest.approx(5.0)


def test_fraction_by_hand():
    def snap(epoch, batch, epochs=3, steps=4):
        return ProgressSnapshot(
            JobState.RUNNING, "", epoch, epochs, batch, steps, {}, {}, 0.0, 0.0, None, []
        )

    assert snap(0, 0).fraction == 0.0
    assert snap(1, 2).fraction == pytest.approx(2 / 12)
    assert snap(2, 2).fraction == pytest.approx(6 / 12)
    assert snap(3, 4).fraction == 1.0
    assert snap(1, 1, epochs=0).fraction == 0.0


def test_probe_indices_first_of_each_digit_then_the_next():
    labels = np.array([1, 1, 0, 2, 2, 0])
    assert probe_indices(labels, count=5).tolist() == [2, 0, 3, 1, 4]
    assert probe_indices(labels, count=2).tolist() == [2, 0]


# ----- layer 2b: real jobs on tiny data ----------------------------------------------------

# Enough batches that a job is surely still training when a test looks at it; tests stop it.
LONG = dataclasses.replace(TINY_CONFIG, epochs=50, train_samples=2000)
DEADLINE = 120.0


def wait_until(predicate, timeout=DEADLINE, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.02)


def model_accuracy(model, data):
    """Keras's own evaluation, independent of core.evaluation."""
    loss, accuracy = model.evaluate(
        data.x_test[..., None] / 255.0,
        keras.utils.to_categorical(data.y_test, 10),
        batch_size=250,
        verbose=0,
    )
    return loss, accuracy


def keep_built_models(monkeypatch) -> list:
    """Make training.build_model keep every model it builds, so a test can read it afterwards."""
    built = []
    real_build = training.build_model

    def recording_build(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(training, "build_model", recording_build)
    return built


@pytest.mark.slow
def test_a_job_trains_evaluates_and_saves(small, registry, store, monkeypatch):
    built = keep_built_models(monkeypatch)
    job = TrainingJob(TINY_CONFIG, small, store=store).start(registry)
    assert job.wait(DEADLINE), "job did not end"
    snap = job.snapshot()
    assert snap.state == JobState.FINISHED, snap.message
    steps = math.ceil(512 / 64)  # 8 batches per epoch
    assert snap.steps_per_epoch == steps and snap.epochs == 2
    assert snap.batch_history["step"] == list(range(1, 2 * steps + 1))
    assert snap.batch_history["batch_in_epoch"] == list(range(1, steps + 1)) * 2
    assert snap.epoch_history["epoch"] == [1, 2]
    assert len(snap.probe_predictions) == 3 and snap.probe_predictions[0].shape == (12, 10)
    assert snap.fraction == 1.0 and snap.queue_position is None
    # The job's test figures are Keras's own on the same test digits.
    loss, accuracy = model_accuracy(built[0], small)
    assert snap.test_metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert snap.test_metrics["test_loss"] == pytest.approx(loss, abs=1e-4)
    assert accuracy > 0.3  # 16 batches are enough to beat chance (0.1) by far
    # And the run is on disk.
    assert snap.run_name == job.run_name and job.run_name in snap.message
    info = store.get(job.run_name)
    assert info.status == "finished" and info.config == TINY_CONFIG
    assert info.metrics == snap.test_metrics
    assert info.history["epoch"] == [1, 2] and info.meta["epochs_completed"] == 2
    assert info.meta["train_samples"] == 512


@pytest.mark.slow
def test_stop_ends_early_and_keeps_what_was_learned(small, registry, store, monkeypatch):
    initial = []
    real_build = training.build_model

    def recording_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        initial.append([w.copy() for w in model.get_weights()])
        return model

    monkeypatch.setattr(training, "build_model", recording_build)
    built = keep_built_models(monkeypatch)
    job = TrainingJob(LONG, small, store=store).start(registry)
    # Two batches: throughput, and so the time left, needs two points.
    running = wait_until(
        lambda: len((s := job.snapshot()).batch_history.get("step", [])) >= 2 and s,
        what="two batches",
    )
    assert running.state == JobState.RUNNING and running.epoch >= 1 and running.batch >= 1
    assert 0 < running.fraction < 1 and running.eta_seconds is not None
    job.stop()
    assert job.state in (JobState.STOPPING, JobState.STOPPED)
    assert job.wait(DEADLINE)
    snap = job.snapshot()
    assert snap.state == JobState.STOPPED, snap.message
    assert len(snap.batch_history["step"]) < LONG.epochs * snap.steps_per_epoch
    assert len(snap.epoch_history.get("epoch", [])) < LONG.epochs
    info = store.get(job.run_name)
    assert info.status == "stopped"
    assert info.meta["epochs_completed"] == len(snap.epoch_history.get("epoch", []))
    # What was learned is kept: the saved weights are the trained ones, not the initial ones.
    saved = store.load_model(job.run_name)
    trained = saved.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(trained, built[0].get_weights(), strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(trained, initial[0], strict=True))
    loss, accuracy = model_accuracy(saved, small)
    assert info.test_accuracy == pytest.approx(accuracy, abs=1e-4)


@pytest.mark.slow
def test_the_second_job_waits_for_the_first(small, registry, store, monkeypatch):
    first = TrainingJob(LONG, small, store=store)
    second = TrainingJob(TINY_CONFIG, small, store=store)
    first_state_at_build = []
    real_build = training.build_model

    def recording_build(*args, **kwargs):
        first_state_at_build.append(first.state)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(training, "build_model", recording_build)
    first.start(registry)
    second.start(registry)
    wait_until(lambda: first.snapshot().batch_history.get("step"), what="first job training")
    snap = second.snapshot()
    assert snap.state == JobState.QUEUED and snap.queue_position == 1
    assert not snap.batch_history and "Waiting" in snap.message
    assert registry.active() == [second, first]
    first.stop()
    assert second.wait(DEADLINE)
    assert second.state == JobState.FINISHED, second.message
    assert second.snapshot().queue_position is None and registry.queue_position(second) is None
    # The second model was built only once the first had ended.
    assert first_state_at_build == [JobState.RUNNING, JobState.STOPPED]
    assert sorted(r.status for r in store.list_runs()[0]) == ["finished", "stopped"]


@pytest.mark.slow
def test_stopping_a_queued_job_trains_nothing(small, registry, store):
    first = TrainingJob(LONG, small, store=store).start(registry)
    second = TrainingJob(TINY_CONFIG, small, store=store).start(registry)
    third = TrainingJob(dataclasses.replace(TINY_CONFIG, epochs=1), small, store=store).start(
        registry
    )
    wait_until(lambda: first.state == JobState.RUNNING, what="first job running")
    assert (second.snapshot().queue_position, third.snapshot().queue_position) == (1, 2)
    second.stop()
    assert second.wait(10), "a queued job must end as soon as it is stopped"
    snap = second.snapshot()
    assert snap.state == JobState.STOPPED and "nothing was trained" in snap.message
    assert not snap.batch_history and second.model is None and second.run_name is None
    assert third.snapshot().queue_position == 1  # moved up
    assert first.state == JobState.RUNNING  # untouched
    wait_until(lambda: first.snapshot().batch_history.get("step"), what="first job training")
    first.stop()
    assert third.wait(DEADLINE) and third.state == JobState.FINISHED, third.message
    names = {r.name for r in store.list_runs()[0]}
    assert names == {first.run_name, third.run_name}


@pytest.mark.slow
def test_a_failing_worker_is_captured_and_the_registry_goes_on(small, registry, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model could not be built\nsecond line")

    monkeypatch.setattr(training, "build_model", broken)
    bad = TrainingJob(TINY_CONFIG, small).start(registry)
    assert bad.wait(30)
    assert bad.state == JobState.FAILED
    assert bad.message == "Training failed: RuntimeError: the model could not be built"
    assert "RuntimeError" in bad.traceback and "broken" in bad.traceback

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(training, "build_model", no_memory)
    oom = TrainingJob(TINY_CONFIG, small).start(registry)
    assert oom.wait(30) and oom.state == JobState.FAILED
    assert oom.message.startswith("Out of memory")

    monkeypatch.undo()
    good = TrainingJob(dataclasses.replace(TINY_CONFIG, epochs=1), small).start(registry)
    assert good.wait(DEADLINE) and good.state == JobState.FINISHED, good.message
    assert registry.active() == []


@pytest.mark.slow
def test_data_that_breaks_fit_fails_the_job(small, registry):
    # Digits of the wrong size: the network cannot take them, and fit raises in the worker.
    broken = dataclasses.replace(small, x_train=np.zeros((600, 14, 56), np.uint8))
    bad = TrainingJob(TINY_CONFIG, broken).start(registry)
    assert bad.wait(DEADLINE)
    assert bad.state == JobState.FAILED
    assert bad.message.startswith("Training failed:") and bad.traceback
    good = TrainingJob(dataclasses.replace(TINY_CONFIG, epochs=1), small).start(registry)
    assert good.wait(DEADLINE) and good.state == JobState.FINISHED, good.message


@pytest.mark.slow
def test_nan_loss_fails_the_job_with_the_reason(small, registry, store, monkeypatch):
    real_dataset = training.make_dataset

    def poisoned(x, y, batch_size, shuffle=False, seed=0, **forms):
        # NaN targets make the cross-entropy NaN from the first batch on. (NaN pixels do not:
        # oneDNN's fused convolution + ReLU outputs zeros for them.)
        ds = real_dataset(x, y, batch_size, shuffle=shuffle, seed=seed, **forms)
        return ds.map(lambda images, labels: (images, labels * np.nan)) if shuffle else ds

    monkeypatch.setattr(training, "make_dataset", poisoned)
    cfg = dataclasses.replace(TINY_CONFIG, epochs=3)
    job = TrainingJob(cfg, small, store=store).start(registry)
    assert job.wait(DEADLINE)
    snap = job.snapshot()
    assert snap.state == JobState.FAILED
    assert "NaN" in snap.message and "epoch 1" in snap.message
    assert "learning rate" in snap.message  # says what to do about it
    # It stopped at once rather than running all three epochs, and saved nothing.
    assert len(snap.batch_history["step"]) < cfg.epochs * snap.steps_per_epoch
    assert not snap.epoch_history.get("epoch")
    assert job.run_name is None and store.list_runs() == ([], [])


@pytest.mark.slow
def test_an_ended_job_keeps_its_figures_not_its_model(small, registry, store, monkeypatch):
    models = []
    real_build = training.build_model

    def weakly_recorded_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        models.append(weakref.ref(model))
        return model

    monkeypatch.setattr(training, "build_model", weakly_recorded_build)
    finished = TrainingJob(TINY_CONFIG, small, store=store).start(registry)
    assert finished.wait(DEADLINE) and finished.state == JobState.FINISHED, finished.message
    stopped = TrainingJob(LONG, small, store=store).start(registry)
    wait_until(lambda: stopped.snapshot().batch_history.get("step"), what="second job training")
    stopped.stop()
    assert stopped.wait(DEADLINE) and stopped.state == JobState.STOPPED, stopped.message
    assert finished.model is None and stopped.model is None
    # Nothing else (callback, datasets, the registry, Keras's caches) keeps the models alive.
    gc.collect()
    assert len(models) == 2 and [ref() for ref in models] == [None, None]
    # The figures are still all there, and the saved runs are what was learned.
    snap = finished.snapshot()
    assert snap.batch_history["step"] == list(range(1, 2 * 8 + 1))
    assert snap.epoch_history["epoch"] == [1, 2]
    assert store.get(finished.run_name).status == "finished"
    assert store.get(stopped.run_name).status == "stopped"


def live_traced_graphs() -> int:
    """How many traced TensorFlow graphs are alive now."""
    from tensorflow.python.framework.func_graph import FuncGraph

    gc.collect()
    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


@pytest.mark.slow
def test_jobs_leave_no_traced_graphs_behind(small, registry, store):
    config = dataclasses.replace(TINY_CONFIG, epochs=1)
    first = TrainingJob(config, small, store=store).start(registry)
    assert first.wait(DEADLINE) and first.state == JobState.FINISHED, first.message
    before = live_traced_graphs()
    for _ in range(2):
        job = TrainingJob(config, small, store=store).start(registry)
        assert job.wait(DEADLINE) and job.state == JobState.FINISHED, job.message
    # Each job traces its own train and test steps; none of them may outlive the job.
    assert live_traced_graphs() == before


@pytest.mark.slow
def test_without_a_store_the_job_keeps_its_model(small, registry):
    job = TrainingJob(dataclasses.replace(TINY_CONFIG, epochs=1), small).start(registry)
    assert job.wait(DEADLINE) and job.state == JobState.FINISHED, job.message
    assert job.model is not None and job.run_name is None
    loss, accuracy = model_accuracy(job.model, small)
    assert job.test_metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)


def test_a_compacted_progress_reads_the_same():
    progress = Progress(epochs=2, steps_per_epoch=3)
    for step in range(1, 7):
        epoch, batch = (step - 1) // 3 + 1, (step - 1) % 3 + 1
        progress.record_batch(epoch, batch, step, 32, {"loss": 1.0 / step, "accuracy": 0.1 * step})
        if batch == 3:
            progress.record_epoch(epoch, {"loss": 0.5 / epoch, "val_loss": 0.6 / epoch})
    before = progress.snapshot(JobState.FINISHED, "")
    progress.compact()
    after = progress.snapshot(JobState.FINISHED, "")
    assert after.batch_history == before.batch_history
    assert after.epoch_history == before.epoch_history
    assert after.epoch_history["val_loss"] == [0.6, 0.3]
    assert all(type(v) is list for v in after.epoch_history.values())


def test_the_registry_forgets_the_oldest_ended_jobs():
    registry = JobRegistry(max_concurrent=1, keep=3)
    jobs = []
    for i in range(5):
        job = types.SimpleNamespace(
            id=f"job-{i}", state=JobState.FINISHED, _stop=threading.Event(), _run=lambda: None
        )
        jobs.append(registry.submit(job))
    assert [j.id for j in registry.jobs()] == ["job-4", "job-3", "job-2"]


def test_memory_settings_go_before_tensorflow():
    # The app's ui package sets the process up before any page imports TensorFlow; importing
    # core alone changes nothing process-wide.
    probe = (
        "import os, sys; import {mod}; print(os.environ.get('{var}'), 'tensorflow' in sys.modules)"
    )
    for mod, expected in (("core.models", "None False"), ("ui", "1 False")):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(mod=mod, var=memory.ONEDNN_SYSTEM_ALLOCATOR)],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != memory.ONEDNN_SYSTEM_ALLOCATOR},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split()[-2:] == expected.split(), (mod, out.stdout, out.stderr)
    memory.release_memory()  # and releasing is safe at any time
