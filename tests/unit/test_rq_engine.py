"""core.rq_engine without a worker: URLs, what crosses Redis, and how a job's news reads."""

import json
import socket
import time

import numpy as np
import pytest

from core.engine import EngineError, make_engine
from core.rq_engine import (
    RQEngine,
    _append_rows,
    _Seen,
    compose,
    decode_examples,
    encode_examples,
    redact,
    worker_failure,
)
from core.training import JobState, Progress


def snapshot_dict(state="running", message="Training…", epoch=1, batch=3):
    progress = Progress(epochs=2, steps_per_epoch=4)
    for k in range(1, batch + 1):
        progress.record_batch(epoch, k, k, 32, {"loss": 1.0 / k, "accuracy": 0.1 * k})
    progress.record_probes(np.full((12, 10), 0.1, np.float32))
    return progress.snapshot(JobState(state), message, test_metrics={"test_accuracy": 0.9})


def test_a_snapshot_survives_json_both_ways():
    snap = snapshot_dict()
    back = type(snap).from_dict(json.loads(json.dumps(snap.to_dict())))
    assert back.state == JobState.RUNNING and back.message == "Training…"
    assert back.batch_history == snap.batch_history and back.epoch == 1 and back.batch == 3
    assert back.test_metrics == {"test_accuracy": 0.9}
    assert back.probe_predictions[0].dtype == np.float32
    np.testing.assert_array_equal(back.probe_predictions[0], snap.probe_predictions[0])
    # A newer worker may send more: unknown keys are ignored.
    assert type(snap).from_dict(dict(snap.to_dict(), extra=1)).batch == 3


@pytest.mark.parametrize("url", ["localhost:6379", "http://redis:6379", "redis:/x"])
def test_a_bad_url_is_named_in_the_error(url, mnist):
    with pytest.raises(EngineError, match="is not a Redis URL") as err:
        make_engine(mnist, None, {"DIGITLAB_REDIS_URL": url, "DIGITLAB_MAX_JOBS": ""})
    assert f"DIGITLAB_REDIS_URL '{url}'" in str(err.value)
    # Unset or blank: the in-process engine, as today.
    assert make_engine(mnist, None, {"DIGITLAB_REDIS_URL": " "}).name == "in process"


def test_an_unusable_port_is_named_and_a_password_never_shown():
    with pytest.raises(EngineError, match="redis://h:port/0|not usable"):
        RQEngine("redis://h:port/0", None)
    assert redact("redis://:s3cret@host:6380/1") == "redis://***@host:6380/1"
    assert redact("redis://me:s3cret@host/0") == "redis://me:***@host/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_redis_down_at_start_is_a_clear_problem_and_nothing_blocks(mnist):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    url = f"redis://:pw@127.0.0.1:{port}/0"
    engine = RQEngine(url, None)
    try:
        start = time.monotonic()
        assert engine.jobs() == [] and engine.queue() == []  # from memory, at once
        assert time.monotonic() - start < 0.5
        deadline = time.monotonic() + 10
        while engine.problem() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        problem = engine.problem()
        assert problem and f"Redis at redis://***@127.0.0.1:{port}/0" in problem
        assert "pw" not in problem and "cannot be reached" in problem
        from core.engine import JobRequest
        from tests.conftest import TINY_CONFIG

        with pytest.raises(EngineError, match="cannot be reached"):
            engine.submit(JobRequest(TINY_CONFIG))
    finally:
        engine.shutdown()


def test_labelled_drawings_cross_as_json():
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    y = np.array([3, 7], np.uint8)
    back = decode_examples(json.loads(json.dumps(encode_examples((x, y)))))
    np.testing.assert_array_equal(back[0], x)
    np.testing.assert_array_equal(back[1], y)
    assert encode_examples(None) is None and decode_examples(None) is None


def test_how_a_jobs_news_reads():
    # Queued, at its place; Stop on a queued job takes it off the queue.
    assert (
        compose(_Seen(rq_status="queued", position=2, polled=True), False, True).queue_position == 2
    )
    assert (
        compose(_Seen(rq_status="queued", position=2, polled=True), True, True).state == "stopping"
    )
    assert compose(_Seen(rq_status="canceled", polled=True), True, True).state == "stopped"
    # Taken by a worker that has not begun training: running, never "queued at no place".
    waiting = {"snapshot": snapshot_dict("queued", "Waiting for a free training slot.").to_dict()}
    taken = compose(
        _Seen(head=dict(waiting, worker="w1"), rq_status="started", polled=True), False, True
    )
    assert taken.state == JobState.RUNNING and taken.message == "Starting on a worker… (worker w1)"
    # Training: the worker's own words, with its name.
    head = {"snapshot": snapshot_dict().to_dict(), "worker": "w1", "final": False}
    snap = compose(_Seen(head=head, rq_status="started", polled=True), False, True)
    assert snap.state == JobState.RUNNING and snap.message == "Training… (worker w1)"
    assert compose(_Seen(head=head, rq_status="started", polled=True), True, True).state == (
        JobState.STOPPING
    )
    # Finished on the worker, but only finished here once the run is home, under its home name.
    done = snapshot_dict("finished", "Test accuracy 90.00%. Saved as run 'tiny-1'.").to_dict()
    head = {"snapshot": done, "worker": "w1", "final": True, "run": "tiny-1"}
    away = compose(_Seen(head=head, rq_status="finished", polled=True), False, True)
    assert away.state == JobState.RUNNING and "Bringing the run home" in away.message
    home = compose(_Seen(head=head, home="tiny-1-2", polled=True), False, True)
    assert home.state == JobState.FINISHED and home.run_name == "tiny-1-2"
    assert "Saved as run 'tiny-1-2'" in home.message
    # The app's verdict (a lost heartbeat) wins over the last progress.
    verdict = compose(_Seen(head=head, verdict="The worker w1 stopped answering"), False, True)
    assert verdict.state == JobState.FAILED and verdict.message.startswith("The worker w1")


def test_rqs_failure_records_read_as_advice():
    killed = worker_failure("Work-horse terminated unexpectedly; waitpid returned 9 (signal 9); ")
    assert "ended unexpectedly (signal 9" in killed and "nothing was saved" in killed
    assert "6 hours" in worker_failure("rq.timeouts.JobTimeoutException: Task exceeded")
    assert (
        worker_failure("Traceback…\nValueError: bad")
        == "Training failed on the worker: ValueError: bad"
    )


def test_rows_sent_twice_are_kept_once():
    rows = {}
    _append_rows(rows, {"start": 0, "rows": {"step": [1.0, 2.0], "loss": [0.9, 0.8]}})
    _append_rows(rows, {"start": 0, "rows": {"step": [1.0, 2.0], "loss": [0.9, 0.8]}})
    _append_rows(rows, {"start": 1, "rows": {"step": [2.0, 3.0], "loss": [0.8, 0.7]}})
    assert rows["step"].tolist() == [1.0, 2.0, 3.0] and rows["loss"].tolist() == [0.9, 0.8, 0.7]
