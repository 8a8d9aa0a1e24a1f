"""RQ engine and workers against a real redis-server: jobs train in worker processes, progress
and stop travel through Redis, runs come home, faults give clear states."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from core.engine import EngineError, JobRequest
from core.rq_engine import RQEngine, keys
from core.training import JobState, probe_indices
from tests.conftest import ROOT, TINY_CONFIG
from tests.redis_support import wait_for, worker_env

pytestmark = pytest.mark.slow

# Long enough to be caught mid-training on a busy 2-core machine (stopped or killed below).
LONG = dataclasses.replace(TINY_CONFIG, train_samples=20_000, epochs=20, batch_size=32)
BURST = (
    "import json, sys\n"
    "from core.worker import run_worker\n"
    "rc = run_worker(sys.argv[1], burst=True, name=sys.argv[2])\n"
    "print(json.dumps({'rc': rc, 'tensorflow': 'tensorflow' in sys.modules}))\n"
)


@pytest.fixture
def engine(redis_url, store):
    engine = RQEngine(redis_url, store)
    yield engine
    engine.shutdown()


def burst_worker(url: str, name: str, mnist_dir) -> dict:
    """Run a --burst worker to the end of the queue in a fresh process; what it says at exit."""
    out = subprocess.run(
        [sys.executable, "-c", BURST, url, name],
        cwd=ROOT,
        env=worker_env(mnist_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def done(job):
    return job.state.done


def test_a_job_trains_on_a_worker_process_and_its_run_comes_home(
    engine, store, redis_url, redis_server, mnist, mnist_dir
):
    job = engine.submit(JobRequest(TINY_CONFIG, owner="ann"))
    assert job.state == JobState.QUEUED and job.snapshot().queue_position == 1
    said = burst_worker(redis_url, "w-burst", mnist_dir)
    # The worker's parent never imported TensorFlow: only its work horse did.
    assert said == {"rc": 0, "tensorflow": False}
    wait_for(lambda: done(job), 60, "the run to come home")
    snap = job.snapshot()
    assert snap.state == JobState.FINISHED, snap.message
    assert snap.run_name and f"Saved as run '{snap.run_name}'" in snap.message
    info = store.get(snap.run_name)
    assert info.owner == "ann" and info.meta["worker"] == "w-burst" and info.status == "finished"
    # Progress came through Redis: every batch, both epochs, the probes before and after each.
    steps = TINY_CONFIG.steps_per_epoch(len(mnist.x_train))
    assert snap.batch_history["step"] == [float(s) for s in range(1, 2 * steps + 1)]
    assert snap.epoch_history["epoch"] == [1.0, 2.0] and len(snap.probe_predictions) == 3
    assert job.probe_index.tolist() == probe_indices(mnist.y_test).tolist()
    assert job.probe_labels.tolist() == mnist.y_test[job.probe_index].tolist()
    # The run that came home is the model that was evaluated (checked by Keras itself).
    model = store.load_model(snap.run_name)
    x = mnist.x_test.astype("float32")[..., None] / 255.0
    y = np.eye(10, dtype="float32")[mnist.y_test]
    _, accuracy = model.evaluate(x, y, verbose=0, batch_size=1000)[:2]
    assert accuracy == pytest.approx(snap.test_metrics["test_accuracy"], abs=1e-4)
    # Nothing half-written among the runs, and the packed copy left Redis.
    assert [p.name for p in store.root.iterdir()] == [snap.run_name]
    assert redis_server.client().exists(keys(job.id).run) == 0


def batches(job) -> int:
    return len(job.snapshot().batch_history.get("step", []))


def test_stop_ends_training_within_batches_and_keeps_what_was_learned(
    engine, store, redis_url, start_worker
):
    start_worker(redis_url, "w-stop", "--threads", "1")
    job = engine.submit(JobRequest(LONG, owner="bo"))
    wait_for(lambda: batches(job) >= 3, 180, "a few batches to arrive through Redis")
    job.stop()
    assert job.state == JobState.STOPPING  # shown at once, before the worker answers
    wait_for(lambda: done(job), 120, "the stopped run to come home")
    snap = job.snapshot()
    assert snap.state == JobState.STOPPED and "keeping what it learned" in snap.message
    total = LONG.epochs * LONG.steps_per_epoch(60_000)
    assert 3 <= len(snap.batch_history["step"]) < total
    assert job.info["tf_threads"] == 1  # --threads reached TensorFlow in the job
    info = store.get(snap.run_name)
    assert info.status == "stopped" and info.owner == "bo"
    assert info.meta["epochs_completed"] < LONG.epochs
    assert info.test_accuracy == pytest.approx(snap.test_metrics["test_accuracy"])


def test_a_job_submitted_while_the_queue_is_read_keeps_its_place(engine, monkeypatch):
    # The poller reads the queue, then the jobs. A job submitted in between is not in the queue
    # it read, and must not be shown as taken by a worker: no worker runs here.
    import threading

    first = engine.submit(JobRequest(TINY_CONFIG, owner="ann"))
    late = []
    adopt = engine._adopt

    def adopt_then_submit(new_ids):
        adopt(new_ids)
        if not late and threading.current_thread() is threading.main_thread():
            late.append(engine.submit(JobRequest(TINY_CONFIG, owner="bo")))

    monkeypatch.setattr(engine, "_adopt", adopt_then_submit)
    engine.refresh()
    assert late, "the refresh did not run in this thread"
    for job, place in ((first, 1), (late[0], 2)):
        snap = job.snapshot()
        assert (snap.state, snap.queue_position) == (JobState.QUEUED, place), snap.message
    engine.refresh()  # the next read has it in the queue
    assert late[0].snapshot().queue_position == 2


def test_two_workers_drain_four_queued_jobs_in_order_with_positions(
    engine, store, redis_url, start_worker, redis_server
):
    short = dataclasses.replace(TINY_CONFIG, epochs=1)
    jobs = [engine.submit(JobRequest(short, owner=f"v{i}")) for i in range(4)]
    assert [j.snapshot().queue_position for j in jobs] == [1, 2, 3, 4]
    entries = engine.queue(owner="v2")
    assert [e.job_id for e in entries] == [j.id for j in jobs] and entries[2].mine
    start_worker(redis_url, "w-a")
    start_worker(redis_url, "w-b")

    def two_train_two_wait():
        states = [j.snapshot() for j in jobs]
        return [s.state for s in states[:2]] == [JobState.RUNNING] * 2 and [
            s.queue_position for s in states[2:]
        ] == [1, 2]

    wait_for(two_train_two_wait, 180, "two jobs training and two waiting at places 1 and 2")
    wait_for(lambda: all(done(j) for j in jobs), 300, "all four jobs to finish")
    assert [j.state for j in jobs] == [JobState.FINISHED] * 4
    assert {j.worker for j in jobs} == {"w-a", "w-b"}
    from rq.job import Job

    started = [Job.fetch(j.id, connection=redis_server.client()).started_at for j in jobs]
    # Queue order shows above: the first two trained while the last two waited at places 1 and
    # 2. Two idle workers take a pair at the same moment, and which of them stamps its start
    # first is a race of microseconds: the first two jobs, and the last two when the identical
    # first two end together (0.3 ms apart, reversed, in one run). So the stamps are compared
    # pair against pair only.
    assert max(started[:2]) < min(started[2:])
    assert len({j.snapshot().run_name for j in jobs}) == 4 == len(store.list_runs()[0])


@pytest.mark.parametrize("victim", ["worker", "horse"])
def test_a_worker_killed_mid_job_fails_that_job_and_the_queue_goes_on(
    engine, store, redis_url, start_worker, victim
):
    first = start_worker(redis_url, "w-doomed")
    killed = engine.submit(JobRequest(LONG, owner="cy"))
    after = engine.submit(JobRequest(TINY_CONFIG, owner="di"))
    wait_for(lambda: batches(killed) >= 2, 180, "the first job to train")
    horses = first.horse_pids()
    assert len(horses) == 1
    if victim == "worker":
        first.kill(signal.SIGKILL)  # kill -9 of the worker process, as an operator would
    else:
        import os

        os.kill(horses[0], signal.SIGKILL)  # the training process alone (the OOM killer)
    wait_for(lambda: killed.state == JobState.FAILED, 30, "the killed job to be shown failed")
    message = killed.snapshot().message
    if victim == "worker":
        assert "w-doomed stopped answering at epoch 1" in message and "nothing was saved" in message
        wait_for(lambda: not _exists(horses[0]), 10, "the horse to die with its worker")
        start_worker(redis_url, "w-doomed")  # restarted under its name, as a supervisor would
    else:
        assert "ended unexpectedly (signal 9" in message and "nothing was saved" in message
    wait_for(lambda: done(after), 180, "the next job to run")
    assert after.state == JobState.FINISHED, after.snapshot().message
    assert after.worker == "w-doomed"
    assert [p.name for p in store.root.iterdir()] == [after.snapshot().run_name]


def _exists(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_redis_stopped_and_restarted_mid_job(engine, store, redis_url, redis_server, start_worker):
    start_worker(redis_url, "w-steady")
    running = engine.submit(JobRequest(LONG, owner="ed"))
    waiting = engine.submit(JobRequest(TINY_CONFIG, owner="fi"))
    wait_for(lambda: batches(running) >= 2, 180, "the first job to train")
    redis_server.stop()
    wait_for(engine.problem, 15, "the engine to notice Redis is gone")
    assert f"Redis at {redis_url}" in engine.problem() and "cannot be reached" in engine.problem()
    assert "cannot be reached" in running.snapshot().message
    assert running.state == JobState.RUNNING  # last news kept, not a false failure
    with pytest.raises(EngineError, match="cannot be reached"):
        engine.submit(JobRequest(TINY_CONFIG))
    seen = batches(running)
    redis_server.start()  # same port, same append-only file
    wait_for(lambda: engine.problem() is None, 30, "the engine to reconnect")
    wait_for(lambda: batches(running) > seen + 2, 60, "progress to flow again from the worker")
    assert running.state == JobState.RUNNING, running.snapshot().message
    running.stop()
    wait_for(lambda: done(running), 120, "the stopped run to come home")
    assert running.state == JobState.STOPPED, running.snapshot().message
    # The job that was queued before the outage was kept, and runs.
    wait_for(lambda: done(waiting), 180, "the queued job to run after the restart")
    assert waiting.state == JobState.FINISHED, waiting.snapshot().message
    assert len(store.list_runs()[0]) == 2


def test_stop_on_a_queued_job_takes_it_off_the_queue(engine, redis_server):
    job = engine.submit(JobRequest(TINY_CONFIG, owner="gu"))
    job.stop()
    wait_for(lambda: done(job), 15, "the queued job to be taken off")
    assert job.state == JobState.STOPPED and "before it started" in job.snapshot().message
    assert redis_server.client().llen("rq:queue:digitlab") == 0


def test_a_lost_workers_job_resumes_from_its_checkpoint_on_another_worker(
    engine, store, redis_url, start_worker
):
    config = dataclasses.replace(TINY_CONFIG, train_samples=3000, epochs=3, checkpoint=True)
    doomed = start_worker(redis_url, "w-lost")
    job = engine.submit(JobRequest(config, owner="cy"))
    # Killed once its first epoch's checkpoint has reached Redis.
    wait_for(lambda: engine.redis.exists(keys(job.id).checkpoint), 240, "a first checkpoint")
    doomed.kill(signal.SIGKILL)
    wait_for(lambda: job.state == JobState.FAILED, 60, "the lost job to be shown failed")
    assert "its last checkpoint is kept: Resume it" in job.snapshot().message
    wait_for(lambda: engine.interrupted("cy"), 30, "the checkpoint to come home")
    (checkpoint,) = engine.interrupted("cy")
    assert checkpoint.id == job.id and checkpoint.epochs_done >= 1
    assert engine.interrupted("someone-else") == []
    done_before = checkpoint.epochs_done
    start_worker(redis_url, "w-next")
    resumed = engine.submit(JobRequest(checkpoint.config, owner="cy", resume=checkpoint.id))
    assert engine.interrupted("cy") == []  # it trains again: not listed twice
    wait_for(lambda: done(resumed), 300, "the resumed job to end")
    assert resumed.state == JobState.FINISHED, resumed.snapshot().message
    run = store.get(resumed.snapshot().run_name)
    assert run.history["epoch"] == [1.0, 2.0, 3.0] and run.meta["resumed"] is True
    assert run.owner == "cy" and run.meta["worker"] == "w-next"
    assert done_before < 3
    assert engine.interrupted("cy") == []  # finished: the checkpoint is gone


def test_a_saved_run_is_trained_further_on_a_worker(engine, store, redis_url, start_worker):
    start_worker(redis_url, "w-more")
    base = engine.submit(JobRequest(dataclasses.replace(TINY_CONFIG, epochs=1), owner="cy"))
    wait_for(lambda: done(base) and base.snapshot().run_name, 300, "the first run")
    name = base.snapshot().run_name
    more = engine.submit(
        JobRequest(dataclasses.replace(TINY_CONFIG, epochs=2), owner="cy", start_from=name)
    )
    wait_for(lambda: done(more) and more.snapshot().run_name, 300, "the run trained further")
    assert more.state == JobState.FINISHED, more.snapshot().message
    run = store.get(more.snapshot().run_name)
    assert run.history["epoch"] == [1.0, 2.0, 3.0] and run.meta["continued_from"] == name
    assert run.history["loss"][0] == pytest.approx(store.get(name).history["loss"][0])
