"""The server's memory through a scripted real-browser session: peak, and growth over 10 jobs.

    python benchmarks/bench_memory.py --data-dir ../shared/data/mnist [--train-samples N]
        [--short-jobs 10] [--short-samples 1000]

Trains three small extra runs with `python -m core train` (outside the server), then starts
`streamlit run app.py` in its own process group on a free port (MNIST from --data-dir, empty
temporary runs and examples folders but for those three runs) and drives headless Chromium through:
1. every page (Home, Train, Explore, Draw);
2. the `fast` preset trained with the Train page open (full MNIST, or --train-samples);
3. Explore's Errors view on 5 different runs (the shipped default, the fast run, the three
   extra ones), then a compare of two runs;
4. 20 drawings on the Draw canvas, then 3 uploads (a 300x300 PNG, a JPEG photo-like digit and a
   6300x6300 RGBA PNG), with a few reruns on each (explanation views changed);
5. --short-jobs short jobs in a row (fast preset, --short-samples digits, 1 epoch).
A thread samples the resident memory of the server's whole process tree (psutil) every 0.1 s; the
kernel's high-water mark (VmHWM) of the server catches what falls between samples. Prints one line
per phase, then one JSON line with `peak_rss_mb`, `rss_after_first_job_mb`, `rss_after_last_job_mb`,
the figure after each phase and whether the budget is met (peak <= 1,200 MB; after the last job
within 50 MB of after the first).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.server import launch_chromium, start_app  # noqa: E402

PEAK_BUDGET_MB = 1200.0
GROWTH_BUDGET_MB = 50.0
WAIT = 120_000  # ms: any step, on a busy 2-core machine
TRAIN_WAIT = 3_600_000  # ms: the full fast training on 2 shared cores
EXTRA_RUNS = (("tutorial", "bench-tutorial"), ("robust", "bench-robust"), ("fast", "bench-fast"))
SEVEN = [(60, 55), (210, 55), (120, 240)]
ONE = [(140, 40), (135, 245)]
INVITATION = "Draw a digit on the black square"
BIG_SIDE = 6300


class Sampler(threading.Thread):
    """Samples the resident memory of a process and its children until stopped."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self.phase_peak = 0.0
        self._halt = threading.Event()

    def rss_mb(self) -> float:
        """The tree's resident memory now, in MB."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def high_water_mb(self) -> float:
        """The server process's own peak resident memory as the kernel counted it, in MB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def run(self) -> None:
        while not self._halt.is_set():
            rss = self.rss_mb()
            self.peak = max(self.peak, rss)
            self.phase_peak = max(self.phase_peak, rss)
            self._halt.wait(self.interval)

    def new_phase(self) -> None:
        """Start a new phase's peak."""
        self.phase_peak = self.rss_mb()

    def stop(self) -> None:
        self._halt.set()


class Session:
    """The scripted visit: a browser tab on the server, and the figures taken along the way."""

    def __init__(self, page, url: str, sampler: Sampler, runs: Path):
        self.page, self.url, self.sampler, self.runs = page, url, sampler, runs
        self.figures: dict[str, float] = {}
        self.started = time.monotonic()

    def mark(self, name: str) -> float:
        """Let the server settle, then record its memory after the phase `name`."""
        self.wait_idle()
        time.sleep(2.0)
        rss = self.sampler.rss_mb()
        self.figures[f"rss_after_{name}_mb"] = round(rss, 1)
        self.figures[f"peak_during_{name}_mb"] = round(max(self.sampler.phase_peak, rss), 1)
        print(
            f"{time.monotonic() - self.started:7.1f} s  after {name:<22} {rss:7.1f} MB  "
            f"(peak in phase {self.sampler.phase_peak:7.1f} MB)",
            flush=True,
        )
        self.sampler.new_phase()
        return rss

    def wait_idle(self, timeout: int = WAIT) -> None:
        """Until the script run is over (what is shown is its final output)."""
        from playwright.sync_api import expect

        expect(self.page.get_by_test_id("stApp")).to_have_attribute(
            "data-test-script-state", "notRunning", timeout=timeout
        )

    def goto(self, path: str, title: str) -> None:
        """Open `path` and wait until its page title shows and its script run is over."""
        from playwright.sync_api import expect

        self.page.goto(self.url + path)
        heading = self.page.get_by_role("heading", name=title, exact=True)
        expect(heading).to_be_visible(timeout=WAIT)
        self.wait_idle()

    def exceptions(self) -> int:
        """Python exception boxes on the page now."""
        return self.page.locator('[data-testid="stException"]').count()

    def saved_runs(self) -> set[str]:
        """Names of the runs saved so far."""
        return {p.name for p in self.runs.iterdir() if (p / "meta.json").exists()}

    def train(self, setup: str, timeout: int) -> str:
        """Open Train with `setup`, press Train and wait for the saved run; its name."""
        from playwright.sync_api import expect

        before = self.saved_runs()
        self.goto(f"/Train?{setup}", "Train a network")
        button = self.page.get_by_role("button", name="Train", exact=True)
        expect(button).to_be_enabled(timeout=WAIT)
        button.click()
        deadline = time.monotonic() + timeout / 1000
        while not (new := self.saved_runs() - before):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no run saved within {timeout / 1000:.0f} s ({setup})")
            self.page.wait_for_timeout(500)
        expect(self.page.get_by_text("Finished —").first).to_be_visible(timeout=WAIT)
        return new.pop()

    def errors_view(self, run: str) -> None:
        """Explore's Errors view of `run`, once its confusion matrix is drawn."""
        from playwright.sync_api import expect

        self.goto(f"/Explore?run={run}", "Explore")
        self.page.get_by_role("radio", name="Errors").click()
        chart = self.page.locator(".st-key-explore_cm .js-plotly-plot")
        expect(chart).to_be_visible(timeout=WAIT)
        self.wait_idle()

    def compare(self, other: str) -> None:
        """Pick `other` under "Compare with" and wait for the comparison chart."""
        from playwright.sync_api import expect

        self.page.get_by_role("combobox", name="Compare with").click()
        self.page.keyboard.type(other)
        self.page.keyboard.press("Enter")
        chart = self.page.locator(".st-key-explore_compare_chart .js-plotly-plot")
        expect(chart).to_be_visible(timeout=WAIT)
        self.wait_idle()

    def drawings(self, run: str, count: int) -> None:
        """`count` drawings on the canvas, each answered, then cleared."""
        from playwright.sync_api import expect

        self.goto(f"/Draw?run={run}", "Draw a digit")
        expect(self.page.get_by_text(INVITATION)).to_be_visible(timeout=WAIT)
        for i in range(count):
            canvas = self.page.locator(f".st-key-draw_canvas_{i} canvas.upper-canvas")
            expect(canvas).to_be_visible(timeout=WAIT)
            box = canvas.bounding_box()
            points = SEVEN if i % 2 == 0 else ONE
            self.page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
            self.page.mouse.down()
            for x, y in points[1:]:
                self.page.mouse.move(box["x"] + x, box["y"] + y, steps=15)
            self.page.mouse.up()
            expect(self.page.get_by_test_id("draw-answer")).to_be_visible(timeout=WAIT)
            self.wait_idle()
            self.page.get_by_role("button", name="Clear", exact=True).click()
            expect(self.page.get_by_text(INVITATION)).to_be_visible(timeout=WAIT)

    def uploads(self, files: list[Path]) -> None:
        """Each file uploaded in turn, answered, then looked at through two more explanations."""
        from playwright.sync_api import expect

        self.page.get_by_role("radio", name="Upload").click()
        dropzone = self.page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        expect(dropzone).to_be_attached(timeout=WAIT)
        for path in files:
            dropzone.set_input_files(str(path))
            expect(self.page.get_by_test_id("draw-answer")).to_be_visible(timeout=WAIT)
            self.wait_idle()
            # Reruns of the page with the same upload: each must not decode the file again.
            for view in ("Saliency", "Grad-CAM"):
                self.page.get_by_role("radio", name=view).click()
                self.wait_idle()
            print(
                f"           uploaded {path.name}: {self.sampler.rss_mb():7.1f} MB "
                f"(peak in phase so far {self.sampler.phase_peak:7.1f} MB)",
                flush=True,
            )


def extra_runs(data_dir: str, runs: Path) -> list[str]:
    """Three small runs trained by the command line, so Explore has five runs to look at."""
    names = []
    for preset, name in EXTRA_RUNS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "core",
                "train",
                "--preset",
                preset,
                "--train-samples",
                "2000",
                "--epochs",
                "1",
                "--name",
                name,
                "--data-dir",
                data_dir,
                "--runs-dir",
                str(runs),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        names.append(name)
    return names


def upload_files(data_dir: str, folder: Path) -> list[Path]:
    """A 300x300 PNG and a JPEG of real test digits, and a 6300x6300 RGBA PNG of a drawn 7."""
    from PIL import Image, ImageDraw

    from core.data import load_mnist

    data = load_mnist(data_dir)
    small = folder / "two-300.png"
    Image.fromarray(255 - np.asarray(Image.fromarray(data.x_test[1]).resize((300, 300)))).save(
        small
    )
    photo = folder / "seven-photo.jpg"
    ink = np.asarray(Image.fromarray(data.x_test[0]).resize((1200, 900)), dtype=np.float32)
    paper = np.full((900, 1200, 3), (224, 214, 196), np.float32)
    rgb = paper * (1 - ink[..., None] / 255) + np.array([30, 30, 60]) * (ink[..., None] / 255)
    Image.fromarray(rgb.astype(np.uint8)).save(photo, quality=90)
    big = folder / f"seven-{BIG_SIDE}.png"
    img = Image.new("RGBA", (BIG_SIDE, BIG_SIDE), (255, 255, 255, 0))
    s = BIG_SIDE / 280
    points = [(x * s, y * s) for x, y in SEVEN]
    ImageDraw.Draw(img).line(points, fill=(0, 0, 0, 255), width=int(18 * s), joint="curve")
    img.save(big, optimize=True)
    return [small, photo, big]


def visit(url: str, sampler: Sampler, runs: Path, args, extra: list[str], files) -> Session:
    """The scripted visit, phase by phase."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT)
        s = Session(page, url, sampler, runs)
        s.goto("/", "Digit Lab")
        s.mark("home")
        s.goto("/Train", "Train a network")
        s.goto("/Explore", "Explore")
        s.goto("/Draw", "Draw a digit")
        s.mark("pages")

        samples = f"&train_samples={args.train_samples}" if args.train_samples else ""
        fast = s.train(f"preset=fast{samples}", TRAIN_WAIT)
        s.mark("fast_training")

        for run in ["default", fast, *extra]:
            s.errors_view(run)
        s.compare("default")
        s.mark("explore_errors")

        s.drawings(fast, 20)
        s.mark("drawings")
        s.uploads(files)
        s.mark("uploads")

        short = f"preset=fast&train_samples={args.short_samples}&epochs=1"
        jobs = []
        for i in range(args.short_jobs):
            s.train(short, WAIT * 5)
            jobs.append(s.mark(f"job_{i + 1}"))
        s.figures["rss_after_jobs_mb"] = [round(v, 1) for v in jobs]
        s.figures["rss_after_first_job_mb"] = round(jobs[0], 1)
        s.figures["rss_after_last_job_mb"] = round(jobs[-1], 1)
        s.figures["exception_boxes"] = s.exceptions()
        browser.close()
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST files")
    parser.add_argument("--train-samples", type=int, help="digits for the fast training (all)")
    parser.add_argument("--short-jobs", type=int, default=10)
    parser.add_argument("--short-samples", type=int, default=1000)
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    runs, examples, files_dir = tmp / "runs", tmp / "examples", tmp / "files"
    for folder in (runs, examples, files_dir):
        folder.mkdir()
    log = tmp / "server.log"
    try:
        extra = extra_runs(data_dir, runs)
        files = upload_files(data_dir, files_dir)
        server = start_app(  # in its own process group: the sampler follows its pid
            {
                "MNIST_DIR": data_dir,
                "DIGITLAB_RUNS_DIR": str(runs),
                "DIGITLAB_EXAMPLES_DIR": str(examples),
                "DIGITLAB_MAX_JOBS": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2",
            },
            log_path=log,
        )
        sampler = Sampler(server.pid)
        sampler.start()
        try:
            time.sleep(3.0)
            idle = sampler.rss_mb()
            print(f"{0:7.1f} s  idle server               {idle:7.1f} MB", flush=True)
            session = visit(server.url, sampler, runs, args, extra, files)
        finally:
            sampler.stop()
            high_water = sampler.high_water_mb()
            server.stop(timeout=15)
        figures = session.figures
        peak = max(sampler.peak, high_water)
        growth = figures["rss_after_last_job_mb"] - figures["rss_after_first_job_mb"]
        tracebacks = log.read_text(errors="replace").count("Traceback")
        result = {
            "peak_rss_mb": round(peak, 1),
            "sampled_peak_rss_mb": round(sampler.peak, 1),
            "rss_idle_mb": round(idle, 1),
            **figures,
            "job_growth_mb": round(growth, 1),
            "peak_ok": peak <= PEAK_BUDGET_MB,
            "growth_ok": growth <= GROWTH_BUDGET_MB,
            "fast_train_samples": args.train_samples or "all",
            "short_jobs": args.short_jobs,
            "server_log_tracebacks": tracebacks,
            "seconds": round(time.monotonic() - session.started, 1),
        }
        print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
