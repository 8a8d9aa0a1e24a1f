"""Training engines behind one API: in process (a worker thread; the embedded default) or RQ on
Redis (`DIGITLAB_REDIS_URL`). Pages talk to an Engine and never know which one runs.

A job, whichever engine trains it, is seen through the same handle: `id`, `owner`, `config`,
`created_at`, `probe_index`, `probe_labels`, `state`, `snapshot()` and `stop()`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.checkpoints import Checkpoint, CheckpointStore
from core.data import MnistData
from core.models import ModelConfig
from core.runs import RunStore

if TYPE_CHECKING:
    from core.training import JobState, ProgressSnapshot

REDIS_SETTING = "DIGITLAB_REDIS_URL"
MAX_JOBS_SETTING = "DIGITLAB_MAX_JOBS"


class Job(Protocol):
    """What a page may read of a job and do with it."""

    id: str
    owner: str | None
    config: ModelConfig
    created_at: float
    probe_index: np.ndarray
    probe_labels: np.ndarray

    @property
    def state(self) -> JobState: ...

    def snapshot(self) -> ProgressSnapshot: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class JobRequest:
    """Everything a visitor asks for when pressing Train."""

    config: ModelConfig
    owner: str | None = None
    extra_examples: tuple[np.ndarray, np.ndarray] | None = None
    run_name: str | None = None
    resume: str | None = None
    """A checkpoint's job id: carry on from its last epoch (config is the checkpoint's)."""
    start_from: str | None = None
    """A run's name: train its model config.epochs epochs more, as a new run."""


@dataclass(frozen=True)
class QueueEntry:
    """One job's place in the queue, shown to everyone without saying whose it is."""

    job_id: str
    position: int | None
    """1 for the next to start; None while it trains."""
    state: str
    preset: str
    mine: bool


class Engine(Protocol):
    """Where jobs are queued and trained."""

    name: str

    def submit(self, request: JobRequest) -> Job: ...

    def jobs(self, owner: str | None = None) -> list[Job]: ...

    def get(self, job_id: str) -> Job | None: ...

    def queue(self, owner: str | None = None) -> list[QueueEntry]: ...

    def interrupted(self, owner: str | None, everyone: bool = False) -> list[Checkpoint]: ...

    def discard(self, checkpoint_id: str) -> None: ...

    def problem(self) -> str | None:
        """Why jobs cannot be queued now (an unreachable Redis), or None; never blocks."""
        ...

    def shutdown(self, timeout: float = 30.0) -> None: ...


class InProcessEngine:
    """Jobs on worker threads of this process, at most max_concurrent at once, others in line."""

    name = "in process"

    def __init__(self, data: MnistData, store: RunStore | None, max_concurrent: int = 1):
        from core.training import JobRegistry

        self.data, self.store = data, store
        self.registry = JobRegistry(max_concurrent=max_concurrent)

    def submit(self, request: JobRequest) -> Job:
        """Queue a job and start its worker thread."""
        from core.training import TrainingJob

        if request.resume and self.registry.get(request.resume):
            raise EngineError("That job is already training again.")
        start_from = self.store.get(request.start_from) if request.start_from else None
        job = TrainingJob(
            request.config,
            self.data,
            store=self.store,
            run_name=request.run_name,
            extra_examples=request.extra_examples,
            owner=request.owner,
            resume=request.resume,
            start_from=start_from,
        )
        return self.registry.submit(job)

    def interrupted(self, owner: str | None, everyone: bool = False) -> list[Checkpoint]:
        """Checkpoints of jobs that no longer train here (the server restarted, or they failed)."""
        if self.store is None:
            return []
        live = {j.id for j in self.registry.jobs() if not j.state.done}
        found = CheckpointStore(self.store.root).list(owner, everyone)
        return [c for c in found if c.id not in live]

    def discard(self, checkpoint_id: str) -> None:
        """Forget an interrupted job's checkpoint."""
        if self.store is not None:
            CheckpointStore(self.store.root).delete(checkpoint_id)

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Known jobs, newest first (only owner's when given)."""
        return self.registry.jobs(owner)

    def get(self, job_id: str) -> Job | None:
        """A job by id, or None."""
        return self.registry.get(job_id)

    def queue(self, owner: str | None = None) -> list[QueueEntry]:
        """Jobs training or waiting, in the order they will run."""
        active = [j for j in reversed(self.registry.jobs()) if not j.state.done]
        entries = [
            QueueEntry(
                j.id,
                self.registry.queue_position(j),
                j.state.value,
                j.config.preset,
                owner is not None and j.owner == owner,
            )
            for j in active
        ]
        return sorted(entries, key=lambda e: (e.position is not None, e.position or 0))

    def problem(self) -> str | None:
        """None: this process can always queue a job."""
        return None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job and wait for their threads (tests, process exit)."""
        self.registry.shutdown(timeout)


def make_engine(
    data: MnistData, store: RunStore | None, settings: Mapping[str, str] | None = None
) -> Engine:
    """The engine the settings ask for: RQ on Redis when DIGITLAB_REDIS_URL is set, else in process.

    The one place the choice is made. A Redis URL that is set but unusable raises EngineError;
    the in-process engine is never used instead, since that would overload the web server.
    """
    settings = os.environ if settings is None else settings
    url = (settings.get(REDIS_SETTING) or "").strip()
    if url:
        from core.rq_engine import RQEngine

        return RQEngine(url, store)
    return InProcessEngine(data, store, max_concurrent=int(settings.get(MAX_JOBS_SETTING) or 1))


class EngineError(RuntimeError):
    """The configured engine cannot be used; the message says what to check."""
