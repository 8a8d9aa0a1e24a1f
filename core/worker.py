"""`python -m core worker`: RQ workers that train Digit Lab's queued jobs, on any machine.

TensorFlow is not fork-safe once initialised, so the worker's parent process never imports it: RQ
forks a work horse per job, and the horse imports TensorFlow, trains with core.training's
TrainingJob on the calling thread, and meanwhile a reporter thread sends the progress to Redis a
few times a second, refreshes the job's heartbeat key and watches the stop flag. At the end the
horse packs the saved run (RunStore.pack) into Redis; the app unpacks it into its own run store.
A horse never outlives its worker (PR_SET_PDEATHSIG on Linux, a parent check elsewhere), so a
worker killed with kill -9 takes its job down with it, and the app fails it once the job's
heartbeat key (refreshed by the horse and by the worker's parent) expires.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from rq import Worker
from rq.serializers import JSONSerializer

from core.rq_engine import ALIVE_TTL, QUEUE, RECORD_TTL, connect, decode_examples, keys, redact
from core.runs import process_alive

if TYPE_CHECKING:
    from redis.client import Pipeline
    from rq.executions import Execution
    from rq.job import Job
    from rq.queue import Queue

log = logging.getLogger(__name__)

THREADS_ENV = "DIGITLAB_WORKER_THREADS"
PARENT_ENV = "DIGITLAB_WORKER_PID"
URL_ENV = "DIGITLAB_WORKER_REDIS_URL"
DATA_ENV = "DIGITLAB_WORKER_DATA_DIR"
HORSE_PREFIX = "digitlab-horse-"
REPORT_SECONDS = 0.25
"""The reporter's tick: progress at most four times a second, the stop flag seen within it."""
FINAL_RETRY_SECONDS = 600.0
"""How long a horse keeps trying to send its result home while Redis is unreachable."""
MONITOR_SECONDS = 5

_data = None
"""MNIST loaded once by the parent (numpy only), inherited by every forked horse."""


class TrainingFailed(RuntimeError):
    """The job's training failed; the message (also in the job's progress) says why."""


# ----- the work horse -------------------------------------------------------------------------


class Reporter(threading.Thread):
    """The horse's link to Redis: heartbeat, stop flag, throttled progress (head + new rows)."""

    def __init__(self, connection: redis.Redis, job_id: str, worker: str, parent: int | None):
        super().__init__(name=f"reporter-{job_id}", daemon=True)
        self.redis, self.keys, self.worker, self.parent = connection, keys(job_id), worker, parent
        self.job = None
        self.failure: str | None = None
        self.extra: dict = {}
        self.stop_seen = False
        self.abandoned = False
        self.rows_sent = 0
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._connected = True

    def run(self) -> None:
        """Report every REPORT_SECONDS until finish(); end the horse if its worker died."""
        while not self._done.is_set():
            if self.parent and os.getppid() != self.parent:
                os._exit(1)  # the worker died: a horse never trains for nobody
            self.send()
            self._done.wait(REPORT_SECONDS)

    def send_checkpoint(self, job_id: str) -> None:
        """After each epoch's checkpoint: send it to Redis, so a lost worker's job can resume."""
        from core.checkpoints import CheckpointStore

        if self.job is None or self.job.store is None:
            return
        try:
            packed = CheckpointStore(self.job.store.root).pack(job_id)
            self.redis.set(self.keys.checkpoint, packed, ex=RECORD_TTL)
        except Exception as exc:  # noqa: BLE001 - a lost checkpoint must not end training
            log.warning("Checkpoint of %s not sent: %s", job_id, exc)

    def finish(self) -> None:
        """Stop the thread (the final report is sent by the horse itself)."""
        self._done.set()
        self.join(5)

    def head(self, snap_dict: dict | None, final: bool = False, run: str | None = None) -> dict:
        """The job's small part of the progress: everything but the per-batch rows."""
        return dict(
            self.extra,
            snapshot=snap_dict,
            worker=self.worker,
            final=final,
            run=run,
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        )

    def send(
        self, final: bool = False, run: str | None = None, packed: bytes | None = None
    ) -> bool:
        """One round trip: heartbeat, flags, and the progress when there is a job; False on a
        Redis error (retried next tick)."""
        with self._lock:
            head, rows = None, None
            if self.job is not None:
                snap = self.job.snapshot()
                batch = snap.batch_history
                rows = {key: values[self.rows_sent :] for key, values in batch.items()}
                count = len(batch.get("step", []))
                # The rows travel once each (appended below); the head is small.
                head = self.head(dataclasses.replace(snap, batch_history={}).to_dict(), final, run)
            elif self.failure is not None:
                head = self.head(_failed_snapshot(self.failure), final, run)
            try:
                with self.redis.pipeline(transaction=False) as p:
                    p.set(self.keys.alive, self.worker, ex=ALIVE_TTL)
                    p.get(self.keys.stop)
                    p.get(self.keys.verdict)
                    if packed is not None:
                        p.set(self.keys.run, packed, ex=RECORD_TTL)
                    if rows and count > self.rows_sent:
                        p.rpush(self.keys.rows, json.dumps({"start": self.rows_sent, "rows": rows}))
                        p.expire(self.keys.rows, RECORD_TTL)
                    if head is not None:
                        p.set(self.keys.head, json.dumps(head), ex=RECORD_TTL)
                    _, stop, verdict, *_ = p.execute()
            except redis.RedisError as exc:
                if self._connected:
                    log.warning("Lost Redis while training: %s (training goes on)", exc)
                self._connected = False
                return False
            if not self._connected:
                log.warning("Redis is back: progress flows again.")
            self._connected = True
            if rows is not None:
                self.rows_sent = count
        if verdict:
            self.abandoned = True  # the app gave up on this job (it lost our heartbeat)
        if (stop or verdict) and not self.stop_seen:
            self.stop_seen = True
            if self.job is not None:
                self.job.stop()
        return True

    def send_final(self, run: str | None, packed: bytes | None) -> None:
        """The last report, with the packed run; retried while Redis is unreachable."""
        deadline = time.monotonic() + FINAL_RETRY_SECONDS
        delay = 0.5
        while not self.send(final=True, run=run, packed=packed):
            if time.monotonic() > deadline:
                raise TrainingFailed("Redis stayed unreachable: the result could not be sent.")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _die_with_parent() -> None:
    """Ask Linux to kill this horse when its worker dies (kill -9 leaves no one to clean up)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the reporter's parent check does it, within a tick


def _set_threads() -> int:
    """Apply --threads before TensorFlow runs anything; the intra-op count in force (0: all)."""
    import tensorflow as tf

    threads = int(os.environ.get(THREADS_ENV) or 0)
    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf.config.threading.get_intra_op_parallelism_threads()


def train_job(request: dict) -> dict:
    """RQ's task, run in the work horse: train the requested configuration, send the run home."""
    from rq import get_current_job

    rq_job = get_current_job()
    parent = int(os.environ.get(PARENT_ENV) or 0) or None
    _die_with_parent()
    if parent and os.getppid() != parent:
        os._exit(1)
    worker = os.environ.get("RQ_WORKER_ID") or socket.gethostname()
    reporter = Reporter(connect(os.environ[URL_ENV]), rq_job.id, worker, parent)
    reporter.start()
    folder = Path(tempfile.mkdtemp(prefix=f"{HORSE_PREFIX}{os.getpid()}-"))
    try:
        return _train(request, reporter, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _train(request: dict, reporter: Reporter, folder: Path) -> dict:
    from core.models import ModelConfig
    from core.runs import RunStore

    try:
        threads = _set_threads()
        from core.data import load_mnist
        from core.training import TrainingJob

        data = _data if _data is not None else load_mnist(os.environ.get(DATA_ENV) or None)
        store = RunStore(folder / "runs", default_dir=None)
        start_from = _starting_point(request, reporter, store)
        job = TrainingJob(
            ModelConfig.from_dict(request["config"]),
            data,
            store=store if request.get("save", True) else None,
            run_name=request.get("run_name"),
            extra_examples=decode_examples(request.get("examples")),
            owner=request.get("owner"),
            resume=request.get("resume"),
            start_from=start_from,
            checkpoint_saved=reporter.send_checkpoint,
            job_id=request.get("id"),
        )
    except Exception as exc:  # noqa: BLE001 - a bad request or missing data fails the job, in words
        message = f"The worker could not start training: {type(exc).__name__}: {exc}"[:500]
        reporter.finish()
        reporter.failure = message
        reporter.send_final(None, None)
        raise TrainingFailed(message) from exc
    reporter.extra = {
        "probe_index": job.probe_index.tolist(),
        "probe_labels": job.probe_labels.tolist(),
        "data_source": data.source,
        "data_label": data.label,
        "tf_threads": threads,
    }
    with reporter._lock:
        reporter.job = job
        if reporter.stop_seen:
            job.stop()
    job.run()
    reporter.finish()
    if reporter.abandoned:
        return {"state": "abandoned"}
    packed = job.store.pack(job.run_name) if job.run_name else None
    reporter.extra["train_seconds"] = round(job.train_seconds, 2)
    reporter.send_final(job.run_name, packed)
    snap = job.snapshot()
    if snap.state.value == "failed":
        raise TrainingFailed(snap.message)
    return {"state": snap.state.value, "run": job.run_name, "worker": reporter.worker}


def _starting_point(request: dict, reporter: Reporter, store):
    """Put what the app sent (a checkpoint to resume, a run to train further) into the horse's
    own store; the run to start from, if any."""
    if not (request.get("resume") or request.get("start_from")):
        return None
    from core.checkpoints import CheckpointStore

    data = reporter.redis.get(reporter.keys.start)
    if data is None:
        raise RuntimeError("the checkpoint or run to start from is missing from Redis")
    if request.get("resume"):
        CheckpointStore(store.root).unpack(data)
        return None
    return store.unpack(data, name=request["start_from"])


def _failed_snapshot(message: str) -> dict:
    from core.training import JobState, ProgressSnapshot

    snap = ProgressSnapshot(JobState.FAILED, message, 0, 0, 0, 0, {}, {}, 0.0, 0.0, None, [])
    return snap.to_dict()


# ----- the worker's parent process ------------------------------------------------------------


class DigitWorker(Worker):
    """RQ's forking worker that rides out a Redis outage instead of quitting mid-job."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Fork the work horse for job, with the job's heartbeat key already set."""
        self._job_alive(job)
        super().execute_job(job, queue)

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """RQ's heartbeat while a job runs, plus the job's own heartbeat key that the app watches
        (the horse refreshes it too, but a horse busy importing TensorFlow can hold the GIL for
        seconds); a Redis outage skips one instead of ending the worker."""
        try:
            super().maintain_heartbeats(job, execution)
        except redis.RedisError as exc:
            self.log.warning("Worker %s: heartbeat not sent (%s); the job goes on", self.name, exc)
        self._job_alive(job)

    def _job_alive(self, job: Job) -> None:
        try:
            self.connection.set(keys(job.id).alive, self.name, ex=ALIVE_TTL)
        except redis.RedisError as exc:
            self.log.warning("Worker %s: job heartbeat not sent (%s)", self.name, exc)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's worker heartbeat, skipped (not fatal) while Redis is unreachable."""
        try:
            super().heartbeat(timeout, pipeline)
        except redis.RedisError as exc:
            if pipeline is not None:
                raise
            self.log.warning("Worker %s: heartbeat not sent (%s)", self.name, exc)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check; waits a little instead of quitting while Redis is unreachable."""
        try:
            super().check_for_suspension(burst)
        except redis.RedisError as exc:
            self.log.warning("Worker %s: Redis unreachable (%s); waiting", self.name, exc)
            time.sleep(2)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleaning, skipped while Redis is unreachable."""
        try:
            super().run_maintenance_tasks()
        except redis.RedisError as exc:
            self.log.warning("Worker %s: maintenance skipped (%s)", self.name, exc)


def default_name() -> str:
    """host-pid: unique on a machine, readable in the app's messages."""
    return f"{socket.gethostname()}-{os.getpid()}"


def clean_horse_folders() -> list[str]:
    """Remove the temporary folders of horses that died (kill -9 leaves them behind)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{HORSE_PREFIX}*"):
        pid = path.name[len(HORSE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _retire_if_dead(connection: redis.Redis, name: str) -> None:
    """Free the name of a worker that died mid-job (kill -9, then a restart under the same name).

    A busy worker heartbeats every MONITOR_SECONDS, so a busy one silent for three times that is
    gone; a busy one still heard from after that long is alive, and RQ refuses the name. An idle
    worker cannot be told dead from alive this way: RQ refuses its name until its key expires.
    """
    from rq.utils import now

    key = f"{Worker.redis_worker_namespace_prefix}{name}"
    deadline = time.monotonic() + 3 * MONITOR_SECONDS + 2
    while True:
        previous = Worker.find_by_key(key, connection)
        if previous is None or previous.death_date is not None or previous.last_heartbeat is None:
            return
        if previous.get_state() != "busy":
            return
        silent = (now() - previous.last_heartbeat).total_seconds()
        if silent > 3 * MONITOR_SECONDS:
            log.warning(
                "Worker %s went silent mid-job %.0f s ago: taking over its name", name, silent
            )
            previous.register_death()
            return
        if time.monotonic() > deadline:
            return
        time.sleep(1.0)


def run_worker(
    url: str,
    burst: bool = False,
    name: str | None = None,
    threads: int | None = None,
    data_dir: str | None = None,
) -> int:
    """Work on Digit Lab's queue until stopped (or, with burst, until it is empty); the exit code."""
    global _data
    from core.engine import EngineError

    try:
        connection = connect(url, socket_timeout=None)
        connection.ping()
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"error: cannot reach Redis at {redact(url)}: {exc}", file=sys.stderr)
        return 1
    os.environ[URL_ENV] = url
    os.environ[PARENT_ENV] = str(os.getpid())
    if threads:
        os.environ[THREADS_ENV] = str(threads)
    data_dir = data_dir or os.environ.get("MNIST_DIR")
    if data_dir:
        from core.data import DataError, load_local

        try:
            _data = load_local(data_dir)  # numpy only: the parent stays free of TensorFlow
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        os.environ[DATA_ENV] = data_dir
    clean_horse_folders()
    name = name or default_name()
    _retire_if_dead(connection, name)
    worker = DigitWorker(
        [QUEUE],
        connection=connection,
        name=name,
        serializer=JSONSerializer,
        job_monitoring_interval=MONITOR_SECONDS,
    )
    try:
        worker.work(burst=burst, logging_level="INFO")
    except ValueError as exc:  # RQ: "There exists an active worker named … already"
        print(f"error: {exc}; choose another --name", file=sys.stderr)
        return 2
    return 0
