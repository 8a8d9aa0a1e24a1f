"""What a redraw of the live Train charts costs the browser: Plotly figures against light SVG.

    python benchmarks/bench_live_charts.py [--seconds 20] [--kinds none plotly svg]

Writes a one-page Streamlit app to a temporary folder whose fragment redraws, every second, the
Train page's three live charts (loss, accuracy, learning rate) from a growing made-up history:
as `core.charts` Plotly figures, as `core.live_chart` SVG, or not at all ("none", the fragment's
own cost). Opens it in headless Chromium and prints the browser's CPU seconds per second of each
kind, and the cost of one redraw (its figure less "none"). No MNIST, no training.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.browser.server import launch_chromium, start_app  # noqa: E402

APP = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import streamlit as st
    sys.path.insert(0, {root!r})
    from core import charts, live_chart

    KIND = os.environ["LIVE_KIND"]
    st.title("live charts")
    t0 = st.session_state.setdefault("t0", time.monotonic())

    @st.fragment(run_every="1s")
    def live():
        n = min(2000, 30 + int((time.monotonic() - t0) * 25))  # 25 batches a second
        loss = 2.3 * np.exp(-np.arange(n) / 150) + 0.05 + np.random.default_rng(n).random(n) * 0.05
        batch = {{"step": list(range(1, n + 1)), "loss": list(loss),
                 "accuracy": list(1 - loss / 2.4), "learning_rate": list(np.geomspace(5e-3, 1e-5, n))}}
        epochs = n // 470
        epoch = {{"epoch": list(range(1, epochs + 1)), "loss": [0.1] * epochs,
                 "accuracy": [0.97] * epochs}}
        st.write(n)
        if KIND == "plotly":
            kw = dict(max_points=charts.LIVE_POINTS, tail=charts.LIVE_TAIL)
            for col, m in zip(st.columns(2), ("loss", "accuracy")):
                col.plotly_chart(charts.training_curves(batch, epoch, m, 0.6, 470, **kw), key=m)
            st.plotly_chart(charts.learning_rate_curve(batch, 470, **kw), key="lr")
        elif KIND == "svg":
            for col, m in zip(st.columns(2), ("loss", "accuracy")):
                col.markdown(live_chart.live_curves(batch, epoch, m, 0.6, 470), unsafe_allow_html=True)
            st.markdown(live_chart.live_learning_rate(batch, 470), unsafe_allow_html=True)

    live()
    """
)


def tree_cpu(process: psutil.Process) -> float:
    """CPU seconds of a process and all its descendants alive now."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def browser_cpu_per_second(kind: str, folder: Path, seconds: float) -> float:
    from playwright.sync_api import sync_playwright

    # From the repository root, so that its .streamlit/config.toml applies.
    server = start_app({"LIVE_KIND": kind}, script=folder / "app.py")
    me = psutil.Process()
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url)
            page.get_by_role("heading", name="live charts").wait_for(timeout=60_000)
            time.sleep(5)  # past the first draw (and Plotly's code loading)
            server_proc = psutil.Process(server.pid)
            start = tree_cpu(me) - tree_cpu(server_proc)
            time.sleep(seconds)  # the interval measured
            used = tree_cpu(me) - tree_cpu(server_proc) - start
            browser.close()
    finally:
        server.stop()
    return used / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kinds", nargs="+", default=["none", "plotly", "svg"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "app.py").write_text(APP.format(root=str(ROOT)))
        figures = {}
        for kind in args.kinds:
            figures[kind] = browser_cpu_per_second(kind, folder, args.seconds)
            print(f"{kind}: browser {figures[kind]:.3f} CPU-s per second", flush=True)
    if "none" in figures:
        for kind in ("plotly", "svg"):
            if kind in figures:
                print(f"one redraw of the three charts as {kind}: "
                      f"{figures[kind] - figures['none']:.3f} CPU-s")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
