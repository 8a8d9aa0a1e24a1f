"""Honest time: the estimate is timed on this machine's own steps, time left follows the recent
pace, and a job says it is preparing until its first batch."""

import dataclasses

import pytest

from core import training
from core.models import Timing, estimate_from_timing, time_training_steps
from core.training import JobState, Progress
from tests.conftest import TINY_CONFIG


def test_timing_reads_the_first_step_apart_from_the_others_on_a_stub_clock():
    # First step 1.5 s; then 4 steps in 0.8 s; the first validation batch 0.6 s; the probe
    # digits' guess 0.05 s.
    ticks = iter([10.0, 11.5, 20.0, 20.8, 30.0, 30.6, 40.0, 40.05])
    timing = time_training_steps(TINY_CONFIG, steps=4, clock=lambda: next(ticks))
    assert timing == Timing(
        first_step=1.5,
        step=pytest.approx(0.2),
        first_eval=pytest.approx(0.6),
        epoch_end=pytest.approx(0.05),
    )


def test_estimate_from_a_timing_by_hand():
    config = dataclasses.replace(TINY_CONFIG, train_samples=1000, batch_size=100, epochs=3)
    # 10 steps an epoch, 30 in all: the first at 2 s, 29 at 0.1 s; no validation.
    assert estimate_from_timing(config, Timing(2.0, 0.1)) == pytest.approx(2.0 + 29 * 0.1)
    held = dataclasses.replace(config, validation_split=0.2)
    # 800 training digits: 8 steps an epoch, 24 in all; 200 held out: 2 forward batches an epoch
    # at a third of a step each.
    expected = 2.0 + 23 * 0.1 + 3 * 2 * 0.1 / 3
    assert estimate_from_timing(held, Timing(2.0, 0.1)) == pytest.approx(expected)
    # The validation step's trace once, and the probe digits' guesses after each epoch.
    timed = Timing(2.0, 0.1, first_eval=0.5, epoch_end=0.04)
    assert estimate_from_timing(held, timed) == pytest.approx(expected + 0.5 + 3 * 0.04)
    assert estimate_from_timing(config, timed) == pytest.approx(2.0 + 29 * 0.1 + 3 * 0.04)


def test_time_left_follows_the_recent_pace_not_the_slow_start(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: now[0])
    progress = Progress(epochs=1, steps_per_epoch=100)
    progress.start_clock()
    now[0] = 5.0  # the first batch took 5 s (tracing)
    progress.record_batch(1, 1, 1, 10, {"loss": 1.0})
    for step in range(2, 11):  # then 0.1 s a batch
        now[0] += 0.1
        progress.record_batch(1, step, step, 10, {"loss": 1.0})
    snap = progress.snapshot(JobState.RUNNING, "")
    assert snap.eta_seconds == pytest.approx(90 * 0.1)
    assert snap.images_per_second == pytest.approx(100.0)


def test_a_job_says_it_is_preparing_until_its_first_batch(mnist):
    job = training.TrainingJob(TINY_CONFIG, mnist)
    job._set(JobState.RUNNING, training.TRAINING)
    assert job.snapshot().message == training.PREPARING
    job.progress.record_batch(1, 1, 1, 64, {"loss": 2.0})
    assert job.snapshot().message == training.TRAINING
