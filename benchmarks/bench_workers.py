"""RQ workers: how long a class waits, what a watched page costs a job, the web process's memory.

    python benchmarks/bench_workers.py --data-dir ../shared/data/mnist [--jobs 8] [--class-size 30]
        [--repeats 2] [--skip-pages]

Starts its own redis-server (temporary folder, free port), `python -m core worker` processes and,
for the page figures, `streamlit run app.py` with DIGITLAB_REDIS_URL and headless Chromium.
1. --jobs short jobs drained by 1 worker, then by 2: wall time, each job's wait and run time; the
   wait of a class of --class-size per worker count (from the measured job time), and on paper
   for a 16-core worker machine.
2. Images/s of a job on a worker while its Train page is open (live panel, reloaded every 10 s)
   against the same job with no page; alternated, medians. Twice: everything sharing this
   machine's cores, then the worker pinned to core 1 and the web server, Redis and the browser
   to core 0 (a stand-in for a worker on its own machine).
3. Resident memory of the web process while 4 jobs, started from 4 browser sessions, train on
   4 workers, against its idle figure with the same 4 pages open.
Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

import psutil  # noqa: E402

from core.engine import JobRequest  # noqa: E402
from core.models import preset  # noqa: E402
from core.rq_engine import RQEngine  # noqa: E402
from core.runs import RunStore  # noqa: E402
from tests.browser.server import launch_chromium, start_app  # noqa: E402
from tests.redis_support import RedisServer  # noqa: E402


def wait_until(condition, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


class Workers:
    """N `python -m core worker` processes; optionally pinned to CPUs."""

    def __init__(self, url: str, n: int, data_dir: str, log_dir: Path, cpus=None, threads=None):
        self.procs = []
        env = dict(os.environ, MNIST_DIR=data_dir, TF_CPP_MIN_LOG_LEVEL="2")
        env = {k: v for k, v in env.items() if k != "DIGITLAB_REDIS_URL"}
        for i in range(n):
            args = [sys.executable, "-m", "core", "worker", "--redis-url", url, "--name", f"b{i}"]
            if threads:
                args += ["--threads", str(threads)]
            pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
            log = open(log_dir / f"worker-{i}.log", "w")  # noqa: SIM115 - the worker writes it
            self.procs.append(
                subprocess.Popen(
                    args,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=pin,
                )  # fmt: skip
            )

    def ready(self, connection, n: int) -> None:
        from rq import Queue, Worker

        queue = Queue("digitlab", connection=connection)
        wait_until(lambda: len(Worker.all(queue=queue)) >= n, 120, f"{n} workers")

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def job_times(engine: RQEngine, jobs) -> list[dict]:
    """Each job's wait (queued to started) and run (started to home) from RQ's records."""
    from rq.job import Job

    out = []
    for job in jobs:
        record = Job.fetch(job.id, connection=engine.redis)
        started = record.started_at.timestamp()
        out.append(
            {"wait": started - job.created_at, "run": job.home_at - started, "home": job.home_at}
        )
    return out


def drain(server: RedisServer, data_dir: str, n_workers: int, n_jobs: int, config, tmp: Path):
    """n_jobs queued at once, drained by n_workers: wall time and per-job figures."""
    server.client().flushall()
    store = RunStore(tmp / f"runs-{n_workers}", default_dir=None)
    engine = RQEngine(server.url, store, poll_seconds=0.2)
    workers = Workers(server.url, n_workers, data_dir, tmp)
    try:
        workers.ready(engine.redis, n_workers)
        start = time.time()
        jobs = [engine.submit(JobRequest(config, owner=f"s{i}")) for i in range(n_jobs)]
        for job in jobs:
            job.home_at = None

        def all_home():
            for job in jobs:
                if job.home_at is None and job.state.done:
                    job.home_at = time.time()
            return all(j.home_at for j in jobs)

        wait_until(all_home, 1800, f"{n_jobs} jobs", every=0.1)
        bad = [j.snapshot().message for j in jobs if j.state != "finished"]
        if bad:
            raise RuntimeError(f"jobs did not finish: {bad}")
        times = job_times(engine, jobs)
        parents = [psutil.Process(p.pid).memory_info().rss / 2**20 for p in workers.procs]
        return {
            "workers": n_workers,
            "wall_s": round(max(t["home"] for t in times) - start, 1),
            "mean_wait_s": round(statistics.mean(t["wait"] for t in times), 1),
            "max_wait_s": round(max(t["wait"] for t in times), 1),
            "mean_job_s": round(statistics.mean(t["run"] for t in times), 1),
            "horse_peak_rss_mb": max(j.info.get("peak_rss_mb") or 0 for j in jobs),
            "worker_parent_rss_mb": round(max(parents), 1),
        }
    finally:
        workers.close()
        engine.shutdown()


def class_wait(job_s: float, workers: int, size: int) -> dict:
    """A class pressing Train at once: job k starts after floor(k / workers) jobs ahead of it."""
    waits = [(k // workers) * job_s for k in range(size)]
    return {
        "workers": workers,
        "job_s": round(job_s, 1),
        "mean_wait_s": round(statistics.mean(waits), 1),
        "last_wait_s": round(waits[-1], 1),
        "last_result_s": round(math.ceil(size / workers) * job_s, 1),
    }


class App:
    """`streamlit run app.py` with DIGITLAB_REDIS_URL, its process for memory figures."""

    def __init__(self, url: str, data_dir: str, tmp: Path, cpus=None):
        env = dict(MNIST_DIR=data_dir, DIGITLAB_REDIS_URL=url,
                   DIGITLAB_RUNS_DIR=str(tmp / "app-runs"), DIGITLAB_EXAMPLES_DIR=str(tmp / "ex"),
                   TF_CPP_MIN_LOG_LEVEL="2")  # fmt: skip
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.server = start_app(env, log_path=tmp / "app.log", timeout=90, preexec_fn=pin)
        self.proc, self.url = self.server.process, self.server.url

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def close(self) -> None:
        self.server.stop()


def images_per_second(job) -> float:
    seconds = job.snapshot().batch_history["seconds"]
    # The first batch includes graph tracing: measure from its end.
    return (len(seconds) - 1) * job.config.batch_size / (seconds[-1] - seconds[0])


def one_job(engine: RQEngine, config, browser, app: App | None) -> tuple[float, float]:
    """Images/s of one job on the worker, watched on its Train page when app is given, and the
    cores the web process kept busy meanwhile."""
    web = psutil.Process(app.proc.pid) if app is not None else None
    cpu0, wall0 = (sum(web.cpu_times()[:2]) if web else 0.0), time.monotonic()
    job = engine.submit(JobRequest(config, owner="bench"))
    page = None
    if app is not None:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(app.url + "/Train")  # a new session reattaches to the running job
    last_reload = time.monotonic()
    while not job.state.done:
        time.sleep(0.5)
        if page is not None and time.monotonic() - last_reload > 10:
            page.reload()
            last_reload = time.monotonic()
    if page is not None:
        page.context.close()
    if job.state != "finished":
        raise RuntimeError(job.snapshot().message)
    cores = (sum(web.cpu_times()[:2]) - cpu0) / (time.monotonic() - wall0) if web else 0.0
    return images_per_second(job), cores


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Every thread of a running process onto these CPUs."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cpus)


def page_ratio(server, data_dir, tmp, config, repeats, browser, pinned: bool) -> dict:
    """Images/s with the page open / without, alternated, medians."""
    server.client().flushall()
    worker_cpus, app_cpus = ({1}, {0}) if pinned else (None, None)
    # Pinned, the worker stands in for one on its own machine: Redis, which serves the page's
    # reads of the job's progress, stays off its core too.
    pin_threads(server.proc.pid, app_cpus or set(range(os.cpu_count() or 1)))
    app = App(server.url, data_dir, tmp, cpus=app_cpus)
    engine = RQEngine(server.url, RunStore(tmp / "ratio-runs", default_dir=None))
    workers = Workers(server.url, 1, data_dir, tmp, cpus=worker_cpus, threads=1 if pinned else None)
    try:
        workers.ready(engine.redis, 1)
        warm = browser.new_context().new_page()
        warm.goto(app.url + "/Train")  # the first visit loads MNIST and Keras in the web process
        warm.get_by_role("heading", name="Train a network").wait_for(timeout=90_000)
        warm.context.close()
        alone, watched, web = [], [], []
        for i in range(repeats):
            alone.append(one_job(engine, config, browser, None)[0])
            ips, cores = one_job(engine, config, browser, app)
            watched.append(ips)
            web.append(cores)
            print(f"  round {i + 1}: no page {alone[-1]:.0f} img/s, page open {ips:.0f} img/s "
                  f"(web process busy {cores:.2f} cores; load average {os.getloadavg()[0]:.1f})",
                  flush=True)  # fmt: skip
        a, w = statistics.median(alone), statistics.median(watched)
        return {"pinned": pinned, "no_page_ips": round(a), "page_ips": round(w),
                "ratio": round(w / a, 3), "web_cores": round(statistics.median(web), 2),
                "rounds": [[round(x), round(y)] for x, y in zip(alone, watched, strict=True)]}  # fmt: skip
    finally:
        workers.close()
        engine.shutdown()
        app.close()


def web_memory(server, data_dir, tmp, config, browser) -> dict:
    """RSS of the web process, idle with 4 Train pages open, then while their 4 jobs train."""
    server.client().flushall()
    app = App(server.url, data_dir, tmp)
    workers = Workers(server.url, 4, data_dir, tmp, threads=1)
    pages = []
    try:
        from redis import Redis

        workers.ready(Redis.from_url(server.url), 4)
        query = "/Train?" + "&".join(f"{k}={v}" for k, v in config.to_query().items())
        for _ in range(4):
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(app.url + query)
            page.get_by_role("heading", name="Train a network").wait_for(timeout=90_000)
            pages.append(page)
        time.sleep(5)
        idle = [app.rss_mb()]
        for _ in range(10):
            time.sleep(0.5)
            idle.append(app.rss_mb())
        samples: list[float] = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                samples.append(app.rss_mb())
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
        for page in pages:
            page.get_by_text("Finished — Test accuracy").first.wait_for(timeout=900_000)
        done.set()
        sampler.join()
        base = statistics.median(idle)
        return {"idle_mb": round(base, 1), "max_training_mb": round(max(samples), 1),
                "growth_mb": round(max(samples) - base, 1), "samples": len(samples)}  # fmt: skip
    finally:
        for page in pages:
            page.context.close()
        workers.close()
        app.close()


def queue_figures(server, data_dir, tmp, short, args, result: dict) -> None:
    """Part 1: short jobs drained by 1 and 2 workers, and what a class would wait."""
    print(f"{args.jobs} short jobs (fast preset, 3,000 digits, 1 epoch):", flush=True)
    drains = []
    for n in (1, 2):
        drains.append(drain(server, data_dir, n, args.jobs, short, tmp))
        d = drains[-1]
        print(f"  {n} worker(s): all done in {d['wall_s']} s; wait mean {d['mean_wait_s']} s, "
              f"max {d['max_wait_s']} s; {d['mean_job_s']} s per job (fork, TensorFlow import, "
              f"train, test, send home); horse peak {d['horse_peak_rss_mb']} MB, worker parent "
              f"{d['worker_parent_rss_mb']} MB", flush=True)  # fmt: skip
    result["drain"] = drains
    size = args.class_size
    classes = [class_wait(d["mean_job_s"], d["workers"], size) for d in drains]
    # On paper: a 16-core machine runs 8 workers of 2 threads, each as fast as this machine's
    # single 2-core worker (its measured job time).
    classes.append(dict(class_wait(drains[0]["mean_job_s"], 8, size), on_paper="16 cores"))
    for c in classes:
        where = c.get("on_paper", "measured here")
        print(f"  a class of {size}, {c['workers']} worker(s) ({where}): mean wait "
              f"{c['mean_wait_s']} s, last starts after {c['last_wait_s']} s, "
              f"all done after {c['last_result_s']} s", flush=True)  # fmt: skip
    result["class"] = classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pages", action="store_true", help="only the queue figures")
    parser.add_argument("--skip-queue", action="store_true", help="only the page figures")
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    server = RedisServer(tmp / "redis")
    server.start()
    result: dict = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1)}
    short = dataclasses.replace(preset("fast"), train_samples=3000, epochs=1)
    try:
        if not args.skip_queue:
            queue_figures(server, data_dir, tmp, short, args, result)
        if not args.skip_pages:
            from playwright.sync_api import sync_playwright

            ratio_config = dataclasses.replace(
                preset("tutorial"), train_samples=20_000, epochs=1, validation_split=0.0
            )
            everything = os.sched_getaffinity(0)
            result["page"] = []
            with sync_playwright() as pw:
                for pinned in (False, True):
                    label = "worker on core 1, web + browser on core 0" if pinned else "all shared"
                    print(f"training speed with the Train page open ({label}):", flush=True)
                    # Pinned: this process, the browser it launches and the web server on core 0.
                    os.sched_setaffinity(0, {0} if pinned else everything)
                    browser = launch_chromium(pw)
                    r = page_ratio(
                        server, data_dir, tmp, ratio_config, args.repeats, browser, pinned
                    )
                    browser.close()
                    print(f"  ratio {r['ratio']} (goal 0.95)", flush=True)
                    result["page"].append(r)
                os.sched_setaffinity(0, everything)
                browser = launch_chromium(pw)
                print("web process memory, 4 pages open, their 4 jobs on 4 workers:", flush=True)
                mem = web_memory(server, data_dir, tmp, short, browser)
                print(f"  idle {mem['idle_mb']} MB, while training up to {mem['max_training_mb']} MB"
                      f" (+{mem['growth_mb']} MB; goal within 30 MB)", flush=True)  # fmt: skip
                result["web_memory"] = mem
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
