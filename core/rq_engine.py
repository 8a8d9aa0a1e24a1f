"""Training on RQ workers through Redis, behind the same Engine API as the in-process engine.

The app enqueues jobs on Redis (`DIGITLAB_REDIS_URL`); `python -m core worker` (core.worker) trains
them on this or any other machine. Progress, the stop flag, a heartbeat and, at the end, the packed
run travel through Redis; the run is unpacked into this app's run store before the job is shown
finished. A page never blocks on Redis: one background thread per engine polls it with short
socket timeouts, and job handles answer from what it last read.

No TensorFlow at import (core.training is imported where a snapshot is made): the worker's
parent process imports this module's keys and connection helpers.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis
from rq import Queue
from rq.job import Job as RQJobRecord
from rq.serializers import JSONSerializer

from core.checkpoints import Checkpoint, CheckpointStore
from core.engine import EngineError, JobRequest, QueueEntry
from core.models import ModelConfig
from core.runs import RunError, RunStore

if TYPE_CHECKING:
    from core.training import JobState, ProgressSnapshot

log = logging.getLogger(__name__)

QUEUE = "digitlab"
PREFIX = "digitlab"
JOBS_KEY = f"{PREFIX}:jobs"
TASK = "core.worker.train_job"

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
"""Seconds: a Redis that is down or slow costs a page at most this, never a hang."""
POLL_SECONDS = 0.5
IDLE_POLL_SECONDS = 2.0
ALIVE_TTL = 15
"""Seconds a job's heartbeat key lives: the work horse refreshes it a few times a second, the
worker's parent every few seconds (core.worker.MONITOR_SECONDS)."""
DEAD_GRACE = 5.0
"""Seconds a missing heartbeat must stay missing (as seen by this app) before the job is failed."""
RECORD_TTL = 7 * 24 * 3600
JOB_TIMEOUT = 6 * 3600
KEEP = 50


@dataclass(frozen=True)
class JobKeys:
    """The Redis keys of one job, besides RQ's own."""

    request: str
    head: str
    rows: str
    stop: str
    alive: str
    verdict: str
    run: str
    home: str
    claim: str
    start: str
    """App to worker: the packed checkpoint or run a job starts from."""
    checkpoint: str
    """Worker to app: the job's last packed checkpoint."""


def keys(job_id: str) -> JobKeys:
    """Where a job's request, progress, flags and packed run live in Redis."""
    base = f"{PREFIX}:job:{job_id}"
    return JobKeys(*(f"{base}:{part}" for part in JobKeys.__dataclass_fields__))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def connect(url: str, socket_timeout: float | None = SOCKET_TIMEOUT) -> redis.Redis:
    """A Redis client for url with short timeouts; EngineError naming the URL when it is unusable."""
    url = (url or "").strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise EngineError(
            f"DIGITLAB_REDIS_URL '{redact(url)}' is not a Redis URL: use redis://HOST:6379/0 "
            "(rediss:// for TLS, unix:///path/to/redis.sock for a socket)."
        )
    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=socket_timeout,
            health_check_interval=15,
        )
    except (ValueError, TypeError) as exc:
        raise EngineError(f"DIGITLAB_REDIS_URL '{redact(url)}' is not usable: {exc}.") from exc


def unreachable(url: str, exc: BaseException) -> str:
    """What to tell a visitor when Redis cannot be reached."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"The training queue (Redis at {redact(url)}) cannot be reached: {reason}. "
        "New jobs cannot be queued until it is back; jobs already queued are kept in Redis, "
        "and running ones go on training on their workers."
    )


def encode_examples(extra: tuple[np.ndarray, np.ndarray] | None) -> dict | None:
    """Labelled drawings as JSON: uint8 bytes in base64 (a few KB per hundred drawings)."""
    if extra is None or not len(extra[0]):
        return None
    x = np.ascontiguousarray(extra[0], dtype=np.uint8)
    y = np.ascontiguousarray(extra[1], dtype=np.uint8)
    return {
        "shape": list(x.shape),
        "x": base64.b64encode(x.tobytes()).decode("ascii"),
        "y": base64.b64encode(y.tobytes()).decode("ascii"),
    }


def decode_examples(data: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Inverse of encode_examples."""
    if not data:
        return None
    x = np.frombuffer(base64.b64decode(data["x"]), dtype=np.uint8).reshape(data["shape"])
    y = np.frombuffer(base64.b64decode(data["y"]), dtype=np.uint8)
    return x, y


def worker_failure(exc_string: str) -> str:
    """RQ's record of a failed job, in words a visitor can act on."""
    text = (exc_string or "").strip()
    if "Work-horse terminated unexpectedly" in text:
        signal = " (signal 9: killed, perhaps for lack of memory)" if "signal 9" in text else ""
        return (
            f"The worker's training process ended unexpectedly{signal}; nothing was saved. "
            "Train again, with a smaller network or fewer samples if memory is short."
        )
    if "JobTimeoutException" in text:
        return f"Training ran past the worker's limit of {JOB_TIMEOUT // 3600} hours and was ended."
    if "AbandonedJobError" in text:
        return "The worker that held this job was lost (killed, or its machine went away)."
    lines = [line for line in text.splitlines() if line.strip()]
    return f"Training failed on the worker: {lines[-1][:400] if lines else 'no detail'}"


@dataclass
class _Seen:
    """What the poller last read of one job."""

    head: dict | None = None
    rows: dict[str, array] = field(default_factory=dict)
    """Per-batch history, 8 bytes a value (a tutorial run's is about 0.7 MB)."""
    chunks: int = 0
    rq_status: str | None = None
    rq_error: str | None = None
    position: int | None = None
    alive: str | None = None
    missing_since: float | None = None
    verdict: str | None = None
    home: str | None = None
    home_error: str | None = None
    polled: bool = False


def _append_rows(rows: dict[str, array], chunk: dict) -> None:
    """Add a chunk of per-batch rows sent by the worker, skipping any it sent twice (a reply
    lost to a timeout after Redis had stored the chunk)."""
    have = len(rows.get("step", ()))
    skip = max(0, have - int(chunk.get("start", have)))
    for key, values in chunk.get("rows", {}).items():
        rows.setdefault(key, array("d")).extend(values[skip:])


class RQJob:
    """A job queued on Redis, seen through the same handle as core.training.TrainingJob."""

    def __init__(self, engine: RQEngine, job_id: str, request: dict):
        self.id = job_id
        self.owner: str | None = request.get("owner")
        self.config = ModelConfig.from_dict(request["config"])
        self.created_at = float(request.get("created_at", time.time()))
        self.requested_name: str | None = request.get("run_name")
        self.checkpoint_id: str = request.get("checkpoint_id") or job_id
        """The checkpoint this job writes: its own, or the interrupted job's it resumes."""
        self._checkpoint_pulled = False
        self._engine = engine
        self._lock = threading.Lock()
        self._seen = _Seen()
        self._stop_asked = False
        self._stop_sent = False

    # ----- the page's surface -------------------------------------------------------------
    @property
    def probe_index(self) -> np.ndarray:
        """The worker's fixed probe digits (indices into its test set); empty until it starts."""
        head = self._head()
        return np.asarray(head.get("probe_index", []) if head else [], dtype=np.int64)

    @property
    def probe_labels(self) -> np.ndarray:
        """The probe digits' true labels."""
        head = self._head()
        return np.asarray(head.get("probe_labels", []) if head else [], dtype=np.int64)

    @property
    def state(self) -> JobState:
        """The job's current state, as last read from Redis."""
        with self._lock:
            return compose(self._seen, self._stop_asked, self._engine.has_store).state

    @property
    def worker(self) -> str | None:
        """The name of the worker that trains (or trained) the job."""
        head = self._head()
        return (head or {}).get("worker") or self._seen.alive

    @property
    def info(self) -> dict:
        """What the worker said about the job besides its progress (data, memory, run)."""
        return dict(self._head() or {}, snapshot=None)

    def snapshot(self) -> ProgressSnapshot:
        """The job's progress and state from the last poll; never waits for Redis."""
        with self._lock:
            snap = compose(self._seen, self._stop_asked, self._engine.has_store)
            snap.batch_history = {k: v.tolist() for k, v in self._seen.rows.items()}
        problem = self._engine.problem()
        if problem and not snap.state.done:
            snap.message = f"{problem} Last news: {snap.message}"
        elif snap.state == "queued" and self._engine.workers() == 0:
            snap.message = (
                "Waiting for a worker: none is listening on the queue now "
                "(start one with `python -m core worker --redis-url URL`)."
            )
        return snap

    def stop(self) -> None:
        """Ask the worker to end at the next batch, keeping what it learned (a queued job is
        taken off the queue)."""
        with self._lock:
            self._stop_asked = True
        self._engine.send_stops()

    # ----- the poller's side --------------------------------------------------------------
    def _head(self) -> dict | None:
        with self._lock:
            return self._seen.head

    @property
    def settled(self) -> bool:
        """True once nothing about the job can change any more (the poller stops reading it)."""
        with self._lock:
            done = compose(self._seen, self._stop_asked, self._engine.has_store).state.done
            return done and (not self._stop_asked or self._stop_sent)


def compose(seen: _Seen, stop_asked: bool, has_store: bool) -> ProgressSnapshot:
    """The snapshot a page shows, from what was read of Redis (batch history left empty)."""
    from core.training import JobState, ProgressSnapshot

    head = seen.head or {}
    data = dict(head.get("snapshot") or {})
    if data:
        snap = ProgressSnapshot.from_dict(dict(data, batch_history={}))
    else:
        snap = ProgressSnapshot(JobState.QUEUED, "", 0, 0, 0, 0, {}, {}, 0.0, 0.0, None, [])
    worker = head.get("worker") or seen.alive
    on = f" (worker {worker})" if worker else ""
    final = bool(head.get("final"))
    if seen.verdict:
        snap.state, snap.message, snap.eta_seconds = JobState.FAILED, seen.verdict, None
    elif final:
        if snap.state in (JobState.FINISHED, JobState.STOPPED) and head.get("run") and has_store:
            if seen.home_error:
                snap.state, snap.message = JobState.FAILED, seen.home_error
            elif not seen.home:
                snap.state = (
                    JobState.STOPPING if snap.state == JobState.STOPPED else JobState.RUNNING
                )
                snap.message = f"Bringing the run home from worker {worker}…"
            else:
                snap.message = snap.message.replace(f"'{head['run']}'", f"'{seen.home}'")
                snap.run_name = seen.home
        elif not has_store:
            snap.run_name = None
    elif seen.rq_status in ("failed", "stopped"):
        snap.state, snap.eta_seconds = JobState.FAILED, None
        snap.message = worker_failure(seen.rq_error or "")
    elif seen.rq_status == "canceled":
        snap.state, snap.message = (
            JobState.STOPPED,
            "Stopped before it started; nothing was trained.",
        )
    elif seen.rq_status in ("queued", "deferred", "scheduled") or not seen.polled:
        if seen.position is None and seen.polled:
            snap.state, snap.message = JobState.RUNNING, "A worker is taking the job…"
        else:
            snap.state, snap.queue_position = JobState.QUEUED, seen.position
            snap.message = "Waiting for a free worker."
        if stop_asked:
            snap.state, snap.message = JobState.STOPPING, "Taking the job off the queue…"
    elif seen.rq_status == "started" or data:
        if not data or snap.state == JobState.QUEUED:
            snap.state, snap.message = JobState.RUNNING, "Starting on a worker…"
        snap.message += on
    else:
        snap.state = JobState.FAILED
        snap.message = "The job is no longer in Redis (it expired, or Redis lost its data)."
    if stop_asked and snap.state == JobState.RUNNING:
        snap.state, snap.message = JobState.STOPPING, f"Stopping after the current batch…{on}"
    return snap


class RQEngine:
    """Jobs queued on Redis and trained by `python -m core worker` processes anywhere."""

    name = "RQ on Redis"

    def __init__(self, url: str, store: RunStore | None, poll_seconds: float = POLL_SECONDS):
        self.url = url.strip()
        self.store = store
        self.redis = connect(self.url)
        self.rq_queue = Queue(QUEUE, connection=self.redis, serializer=JSONSerializer)
        self.poll_seconds = poll_seconds
        self._jobs: dict[str, RQJob] = {}
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._failures = 0
        self._workers: int | None = None
        self._workers_checked = 0.0
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="rq-engine-poll", daemon=True)
        self._thread.start()

    @property
    def has_store(self) -> bool:
        """Whether runs are brought home (the command line's --no-save has no store)."""
        return self.store is not None

    # ----- the Engine API -----------------------------------------------------------------
    def submit(self, request: JobRequest) -> RQJob:
        """Queue a job on Redis; EngineError with a clear message when Redis cannot be reached."""
        config = request.config.validate()
        job_id = f"job-{uuid.uuid4().hex[:10]}"
        start = self._starting_point(request)
        record = {
            "id": job_id,
            "owner": request.owner,
            "config": config.to_dict(),
            "created_at": time.time(),
            "run_name": request.run_name,
            "resume": request.resume,
            "start_from": request.start_from,
            "checkpoint_id": request.resume or job_id,
        }
        payload = dict(
            record,
            examples=encode_examples(request.extra_examples),
            save=self.store is not None,
        )
        k = keys(job_id)
        try:
            with self.redis.pipeline() as p:
                if start is not None:
                    p.set(k.start, start, ex=RECORD_TTL)
                p.set(k.request, json.dumps(record), ex=RECORD_TTL)
                p.zadd(JOBS_KEY, {job_id: record["created_at"]})
                p.execute()
            self.rq_queue.enqueue(
                TASK,
                payload,
                job_id=job_id,
                job_timeout=JOB_TIMEOUT,
                result_ttl=RECORD_TTL,
                failure_ttl=RECORD_TTL,
                description=f"train {config.preset} for {request.owner or 'the command line'}",
            )
            position = self.rq_queue.get_job_position(job_id)
        except redis.RedisError as exc:
            raise EngineError(unreachable(self.url, exc)) from exc
        job = RQJob(self, job_id, record)
        with job._lock:
            job._seen.rq_status, job._seen.polled = "queued", True
            job._seen.position = None if position is None else position + 1
        with self._lock:
            self._jobs[job_id] = job
        self._wake.set()
        return job

    def _starting_point(self, request: JobRequest) -> bytes | None:
        """What a worker needs from this app's store to resume a checkpoint or continue a run."""
        if request.resume:
            if self.store is None:
                raise EngineError("Resuming needs the app's run store.")
            if any(j.checkpoint_id == request.resume and not j.state.done for j in self.jobs()):
                raise EngineError("That job is already training again.")
            return CheckpointStore(self.store.root).pack(request.resume)
        if request.start_from:
            if self.store is None:
                raise EngineError("Training a run further needs the app's run store.")
            return self.store.pack(request.start_from)
        return None

    def interrupted(self, owner: str | None, everyone: bool = False) -> list[Checkpoint]:
        """Checkpoints in this app's store of jobs that no worker trains now (a worker was lost)."""
        if self.store is None:
            return []
        live = {j.checkpoint_id for j in self.jobs() if not j.state.done}
        found = CheckpointStore(self.store.root).list(owner, everyone)
        return [c for c in found if c.id not in live]

    def discard(self, checkpoint_id: str) -> None:
        """Forget an interrupted job's checkpoint."""
        if self.store is not None:
            CheckpointStore(self.store.root).delete(checkpoint_id)

    def jobs(self, owner: str | None = None) -> list[RQJob]:
        """Known jobs, newest first (only owner's when given), as last read from Redis."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
        return [j for j in jobs[:KEEP] if owner is None or j.owner == owner]

    def get(self, job_id: str) -> RQJob | None:
        """A job by id, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def queue(self, owner: str | None = None) -> list[QueueEntry]:
        """Jobs training or waiting, in the order they will run."""
        entries = []
        for job in reversed(self.jobs()):
            snap = job.snapshot()
            if snap.state.done:
                continue
            mine = owner is not None and job.owner == owner
            entries.append(
                QueueEntry(job.id, snap.queue_position, snap.state.value, job.config.preset, mine)
            )
        return sorted(entries, key=lambda e: (e.position is not None, e.position or 0))

    def problem(self) -> str | None:
        """Why jobs cannot be queued now (Redis unreachable), or None."""
        return self._problem

    def workers(self) -> int | None:
        """How many workers listen on the queue (as last counted; None before the first count)."""
        return self._workers

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop polling Redis (jobs go on training on their workers and come home later)."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)
        self.redis.close()

    def refresh(self) -> None:
        """Read every unsettled job's news from Redis now (the poller calls this)."""
        try:
            self._refresh()
        except redis.RedisError as exc:
            self._failures += 1
            # One slow answer on a busy machine is not an outage: the second in a row is.
            if self._failures >= 2 and self._problem is None:
                log.warning("Redis at %s unreachable: %s", redact(self.url), exc)
                self._problem = unreachable(self.url, exc)
        except Exception:  # noqa: BLE001 - a bad record must not stop the poller for everyone
            log.exception("Reading the jobs from Redis failed")
        else:
            self._failures = 0
            self._problem = None

    def send_stops(self) -> None:
        """Raise the stop flag of every job whose owner pressed Stop now, and wake the poller to
        read what follows (it retries a flag that did not go out)."""
        self._send_pending_stops()
        self._wake.set()

    def _send_pending_stops(self) -> None:
        for job in self.jobs():
            if job._stop_asked and not job._stop_sent:
                try:
                    self._send_stop(job)
                except redis.RedisError as exc:
                    self._problem = unreachable(self.url, exc)
                    return

    # ----- polling ------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.clear()  # before reading: a wake during the read polls again at once
            self.refresh()
            busy = any(not j.settled for j in self.jobs())
            self._wake.wait(self.poll_seconds if busy else IDLE_POLL_SECONDS)

    def _refresh(self) -> None:
        r = self.redis
        # The jobs to read are taken before the queue is: each was enqueued before it was listed
        # here (submit), so the queue read next has it unless a worker took it. A job submitted
        # or adopted during this read waits for the next one; read now, it could be missing from
        # the older queue and shown as taken by a worker ("A worker is taking the job…").
        active = [j for j in self.jobs() if not j.settled]
        with r.pipeline(transaction=False) as p:
            p.zrevrange(JOBS_KEY, 0, KEEP - 1)
            p.lrange(self.rq_queue.key, 0, -1)
            ids, queued = ([i.decode() for i in result] for result in p.execute())
        self._adopt([i for i in ids if self.get(i) is None])
        positions = {job_id: n + 1 for n, job_id in enumerate(queued)}
        if active:
            self._read(active, positions)
        # Not send_stops(): waking itself, the poller would spin (half a core, and Redis with it).
        self._send_pending_stops()
        for job in active:
            self._check_heartbeat(job)
            self._bring_home(job)
            self._checkpoint_home(job)
        if any(j.state == "queued" for j in active):
            self._count_workers()

    def _adopt(self, new_ids: list[str]) -> None:
        """Handles for jobs queued by other processes (another app, the command line)."""
        if not new_ids:
            return
        records = self.redis.mget([keys(i).request for i in new_ids])
        with self._lock:
            for job_id, raw in zip(new_ids, records, strict=True):
                if raw is not None and job_id not in self._jobs:
                    try:
                        self._jobs[job_id] = RQJob(self, job_id, json.loads(raw))
                    except (ValueError, KeyError, TypeError) as exc:
                        log.warning("Unreadable job record %s: %s", job_id, exc)

    def _read(self, jobs: list[RQJob], positions: dict[str, int]) -> None:
        with self.redis.pipeline(transaction=False) as p:
            for job in jobs:
                k = keys(job.id)
                p.get(k.head)
                p.lrange(k.rows, job._seen.chunks, -1)
                p.get(k.verdict)
                p.get(k.alive)
                p.hget(RQJobRecord.key_for(job.id), "status")
                p.get(k.home)
            results = p.execute()
        for n, job in enumerate(jobs):
            head, chunks, verdict, alive, status, home = results[6 * n : 6 * n + 6]
            with job._lock:
                seen = job._seen
                if head is not None:
                    seen.head = json.loads(head)
                for chunk in chunks:
                    _append_rows(seen.rows, json.loads(chunk))
                seen.chunks += len(chunks)
                seen.verdict = verdict.decode() if verdict else None
                seen.alive = alive.decode() if alive else None
                seen.rq_status = status.decode() if status else None
                seen.position = positions.get(job.id)
                seen.home = home.decode() if home else seen.home
                seen.polled = True
            if seen.rq_status == "failed" and seen.rq_error is None:
                seen.rq_error = self._rq_error(job.id)

    def _rq_error(self, job_id: str) -> str:
        try:
            record = RQJobRecord.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
            result = record.latest_result()
        except Exception as exc:  # noqa: BLE001 - a job RQ cannot read back still failed
            return str(exc)
        return (result.exc_string if result is not None else "") or ""

    def _send_stop(self, job: RQJob) -> None:
        k = keys(job.id)
        self.redis.set(k.stop, "1", ex=RECORD_TTL)
        with job._lock:
            queued = job._seen.rq_status in ("queued", "deferred", "scheduled", None)
        if queued:
            try:
                record = RQJobRecord.fetch(job.id, connection=self.redis, serializer=JSONSerializer)
                if record.get_status() in ("queued", "deferred", "scheduled"):
                    record.cancel()
                    with job._lock:
                        job._seen.rq_status = "canceled"
            except redis.RedisError:
                raise
            except Exception as exc:  # noqa: BLE001 - started meanwhile: the flag stops it
                log.info("Could not cancel %s (%s); the stop flag will end it.", job.id, exc)
        job._stop_sent = True

    def _check_heartbeat(self, job: RQJob) -> None:
        """Fail a started job whose work horse stopped refreshing its heartbeat (killed, lost)."""
        with job._lock:
            seen = job._seen
            head = seen.head or {}
            watching = seen.rq_status == "started" and not head.get("final") and not seen.verdict
            if not watching or seen.alive:
                seen.missing_since = None
                return
            now = time.monotonic()
            seen.missing_since = seen.missing_since or now
            if now - seen.missing_since < DEAD_GRACE:
                return
            snap = head.get("snapshot") or {}
        where = (
            f" at epoch {snap['epoch']}, batch {snap['batch']}"
            if snap.get("epoch")
            else " as it began"
        )
        worker = head.get("worker") or "that held it"
        kept = (
            "its last checkpoint is kept: Resume it below."
            if self.redis.exists(keys(job.id).checkpoint)
            else "nothing was saved. Train again: another worker will take it."
        )
        verdict = (
            f"The worker {worker} stopped answering{where} (killed, or its machine was lost); "
            + kept
        )
        self._fail(job, verdict)

    def _fail(self, job: RQJob, verdict: str) -> None:
        """Record the app's verdict, so every view (and a horse that comes back) agrees."""
        k = keys(job.id)
        if not self.redis.set(k.verdict, verdict, ex=RECORD_TTL, nx=True):
            verdict = (self.redis.get(k.verdict) or verdict.encode()).decode()
        with job._lock:
            job._seen.verdict = verdict
        try:
            from rq.job_lifecycle import record_job_failure

            record = RQJobRecord.fetch(job.id, connection=self.redis, serializer=JSONSerializer)
            with self.redis.pipeline() as p:
                self.rq_queue.started_job_registry.remove_executions(record, pipeline=p)
                record_job_failure(record, verdict, p)
                p.execute()
        except redis.RedisError:
            raise
        except Exception as exc:  # noqa: BLE001 - RQ's own cleanup will get to it
            log.info("Could not move %s to RQ's failed jobs: %s", job.id, exc)

    def _bring_home(self, job: RQJob) -> None:
        """Unpack a finished job's run into this app's store, once, before it shows finished."""
        with job._lock:
            seen = job._seen
            head = seen.head or {}
            due = head.get("final") and head.get("run") and not seen.home and not seen.home_error
        if not due or self.store is None:
            return
        k = keys(job.id)
        if not self.redis.set(k.claim, "1", ex=120, nx=True):
            return  # another app process is bringing it home; its name arrives in k.home
        data = self.redis.get(k.run)
        if data is None:
            with job._lock:
                seen.home_error = (
                    "The worker's packed run is missing from Redis; nothing was saved."
                )
            return
        meta = {"owner": job.owner, "worker": head.get("worker"), "job_id": job.id}
        try:
            info = self.store.unpack(data, name=job.requested_name or head["run"], meta=meta)
        except RunError as exc:
            self.redis.delete(k.claim)
            with job._lock:
                seen.home_error = f"The run came back from the worker but was not saved: {exc}"
            return
        with self.redis.pipeline() as p:
            p.set(k.home, info.name, ex=RECORD_TTL)
            p.delete(k.run)
            p.execute()
        with job._lock:
            seen.home = info.name
        CheckpointStore(self.store.root).delete(job.checkpoint_id)  # it ended: nothing to resume
        self.redis.delete(k.checkpoint, k.start)

    def _checkpoint_home(self, job: RQJob) -> None:
        """A failed job's last checkpoint (its worker was lost) comes home once, for Resume."""
        if job._checkpoint_pulled or self.store is None or job.state != "failed":
            return
        job._checkpoint_pulled = True
        data = self.redis.get(keys(job.id).checkpoint)
        if data is None:
            return
        try:
            CheckpointStore(self.store.root).unpack(data)
        except RunError as exc:
            log.warning("The checkpoint of %s could not be kept: %s", job.id, exc)

    def _count_workers(self) -> None:
        if time.monotonic() - self._workers_checked < 5.0:
            return
        from rq import Worker

        self._workers = len(Worker.all(connection=self.redis, queue=self.rq_queue))
        self._workers_checked = time.monotonic()
