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
from tests.redis_support import (  # noqa: F401 - fixtures
    redis_server,
    redis_url,
    start_worker,
    wait_for,
    worker_env,
)

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
