"""A real redis-server on a free port (persistent: appendonly), and worker processes to drain it.

Import the fixtures in a test module: `from tests.redis_support import redis_server, redis_url`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.server import free_port

ROOT = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll condition until it returns something truthy (returned), or fail naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class RedisServer:
    """redis-server with an append-only file in its own folder; stop() and start() keep data."""

    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (the same port and data as before) and wait until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "a")  # noqa: SIM115 - the server keeps writing it
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
            ]
            + ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            + ["--protected-mode", "no", "--daemonize", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.ping, 20, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        """Whether the server answers."""
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Shut the server down cleanly (its append-only file is kept)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self):
        """A plain client for assertions."""
        import redis

        return redis.Redis(port=self.port, socket_timeout=5)


def require_redis() -> None:
    """Skip locally when redis-server is missing; in CI that is a failure (tests/run installs it)."""
    if not Path(REDIS_SERVER).exists():
        message = "the worker tests need redis-server (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must install it (tests/run does)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """One redis-server per test module."""
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> Iterator[str]:
    """The server's URL, emptied before each test (and started again if a test stopped it)."""
    if not redis_server.ping():
        redis_server.start()
    redis_server.client().flushall()
    yield redis_server.url


@dataclass
class WorkerProcess:
    """`python -m core worker` in its own process group, its output in a file."""

    proc: subprocess.Popen
    name: str
    log_path: Path

    def log(self) -> str:
        """What the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def horse_pids(self) -> list[int]:
        """The worker's children (its work horse while a job trains)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to the worker's parent process only (as `kill -9 PID` does)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        """Wait for a --burst worker to exit; its return code."""
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """End the worker and its horse if they still run."""
        for pid in self.horse_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)


def worker_env(mnist_dir: Path | str) -> dict[str, str]:
    """The environment a worker runs with: the shared MNIST, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITLAB_")}
    return dict(env, MNIST_DIR=str(mnist_dir), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


@pytest.fixture
def start_worker(tmp_path, mnist_dir) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(url, name, *args): a worker process, ended after the test."""
    started: list[WorkerProcess] = []

    def start(url: str, name: str, *args: str) -> WorkerProcess:
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core", "worker", "--redis-url", url, "--name", name, *args],
                cwd=ROOT,
                env=worker_env(mnist_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(proc, name, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
