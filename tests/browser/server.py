"""The app's Streamlit server and headless Chromium, for the browser tests and the benchmarks.

Plain functions, no pytest: `start_app({...})` runs `streamlit run app.py` in its own process group
on a free port and returns once /_stcore/health answers; `launch_chromium(playwright)` opens Debian's
Chromium with the arguments every browser test and benchmark uses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Points on the Train page's loss chart: it grows with every refresh that brings new batches.
CHART_POINTS = """() => {
  // The loss chart: light SVG (batches seen) while training, Plotly (points drawn) once it ends.
  const svg = document.querySelector('svg[data-batches]');
  if (svg) return Number(svg.getAttribute('data-batches'));
  const plots = document.querySelectorAll('.stPlotlyChart .js-plotly-plot');
  if (!plots.length || !plots[0].calcdata || !plots[0].calcdata.length) return 0;
  return plots[0].calcdata[0].length || 0;
}"""


class ServerDidNotStart(RuntimeError):
    """The server exited, or was not healthy in time; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Poll {url}/_stcore/health until it says ok (True); False after timeout s or once proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return True
        except OSError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop_process_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process group proc leads; SIGKILL it if proc has not exited after timeout s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
    except ProcessLookupError:  # already gone
        proc.wait()


def kill_process_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group proc leads (if any of it is left) and reap proc."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class AppServer:
    """A running `streamlit run app.py`: its URL, its process (the leader of its own group)."""

    url: str
    process: subprocess.Popen
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # what start_app set on top of os.environ

    @property
    def pid(self) -> int:
        """The server's pid, also its process group's id."""
        return self.process.pid

    @property
    def runs_dir(self) -> Path:
        """Its DIGITLAB_RUNS_DIR."""
        return Path(self.env["DIGITLAB_RUNS_DIR"])

    @property
    def examples_dir(self) -> Path:
        """Its DIGITLAB_EXAMPLES_DIR."""
        return Path(self.env["DIGITLAB_EXAMPLES_DIR"])

    def log(self) -> str:
        """What the server printed so far ('' without a log file)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 10) -> None:
        """End the server's process group (SIGTERM, SIGKILL after timeout s)."""
        stop_process_group(self.process, timeout)


def start_app(
    env_overrides: Mapping[str, str],
    *,
    log_path: Path | None = None,
    timeout: float = 60,
    preexec_fn: Callable[[], object] | None = None,
    script: Path | None = None,
) -> AppServer:
    """`streamlit run app.py` (headless, no file watcher, no usage stats) on a free port of
    127.0.0.1, in its own process group, with os.environ plus env_overrides; returns once healthy.

    Its output goes to log_path (overwritten), or nowhere. `script` runs another Streamlit file
    instead, still from the repository root (its .streamlit/config.toml). Raises
    ServerDidNotStart, the process group killed, if it exits or is not healthy within timeout s.
    """
    port = free_port()
    env = {k: str(v) for k, v in env_overrides.items()}
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(script or "app.py"),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    finally:
        if log_path:
            out.close()  # the server holds its own copy
    server = AppServer(f"http://127.0.0.1:{port}", proc, log_path, env)
    if not wait_healthy(server.url, timeout, proc):
        code = proc.poll()
        why = f"exited with {code}" if code is not None else f"not healthy in {timeout:.0f} s"
        kill_process_group(proc)
        raise ServerDidNotStart(f"Streamlit did not start ({why}):\n{server.log()[-3000:]}")
    return server


def launch_chromium(playwright):
    """Headless Debian Chromium (CHROMIUM, CHROMIUM_ARGS) from a sync Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
