"""Launch and watch a training job: the Train button, the job picker and the live panel.

Jobs live in the process-wide engine (ui.resources.get_engine), not in a session, so a job
survives page switches and reloads. The live panel is a fragment that ticks while the job runs.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from core import charts, live_chart, train_form
from core.data import MnistData
from core.drawing import enlarge
from core.engine import Engine, EngineError, Job, JobRequest
from core.training import JobState, ProgressSnapshot
from ui import resources, visitor

if TYPE_CHECKING:
    from core.models import ModelConfig

JOB = "train_job"
PICK = "train_job_pick"
ENGINE_ERROR = "train_engine_error"
ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "stopping": ":material/front_hand:",
    "stopped": ":material/stop_circle:",
    "finished": ":material/check_circle:",
    "failed": ":material/error:",
}


def owner() -> str:
    """This visitor's owner tag, recorded with the jobs they start."""
    return visitor.me()


def _start(config: ModelConfig, use_examples: bool) -> None:
    """on_click of Train: queue the job; the same run already draws Train disabled."""
    extra = resources.get_examples(visitor.me()).load() if use_examples else None
    try:
        job = resources.get_engine().submit(JobRequest(config, owner=owner(), extra_examples=extra))
    except EngineError as exc:
        st.session_state[ENGINE_ERROR] = str(exc)
        return
    st.session_state[JOB] = job.id
    st.session_state[PICK] = job.id  # the watch picker follows the new job


def train_button(config: ModelConfig, errors: dict[str, str], unshown: list[str]) -> bool:
    """Train, disabled while the form has errors, the engine cannot take jobs, or this visitor's
    job still runs; whether the visitor has a job that has not ended."""
    try:
        engine = resources.get_engine()
        down = engine.problem()
        mine = [j for j in engine.jobs(owner()) if not j.state.done]
    except EngineError as exc:
        down, mine = str(exc), []
    problem = st.session_state.pop(ENGINE_ERROR, None) or down
    st.button(
        "Train",
        type="primary",
        icon=":material/play_arrow:",
        key="train_start",
        on_click=_start,
        args=(config, bool(st.session_state.get("train_use_examples"))),
        disabled=bool(errors) or bool(mine) or down is not None,
        help="Fix the fields marked in red first."
        if errors
        else "Your job is still running: stop it or let it finish first."
        if mine
        else None,
    )
    if problem:
        st.error(problem, icon=":material/cloud_off:")
    if errors:
        st.error(
            "Nothing starts until the fields marked above are fixed."
            + "".join(f"\n- {message}" for message in unshown)
        )
    return bool(mine)


def engine() -> Engine | None:
    """The engine, or None when it cannot be made (a bad Redis URL: train_button says why)."""
    try:
        return resources.get_engine()
    except EngineError:
        return None


def queue_view() -> None:
    """Everyone's place in the queue, without saying who the others are."""
    current = engine()
    entries = current.queue(owner()) if current is not None else []
    if not entries:
        return
    lines = []
    for e in entries:
        place = "training now" if e.position is None else f"#{e.position} in line"
        who = "**yours**" if e.mine else "another visitor's"
        lines.append(f"{place}: {who} ({e.preset}, {e.state})")
    st.caption("Queue: " + " · ".join(lines))


def chosen_job() -> Job | None:
    """The job to watch: one of this visitor's (an operator sees every job): the one started or
    picked here, else the one training, else the next in line, else the latest."""
    try:
        engine = resources.get_engine()
    except EngineError:
        return None  # train_button says why
    jobs = engine.jobs() if visitor.is_admin() else engine.jobs(owner())
    ids = [j.id for j in jobs]
    if st.session_state.get(JOB) not in ids and jobs:
        order = {JobState.RUNNING: 0, JobState.STOPPING: 0, JobState.QUEUED: 1}
        st.session_state[JOB] = min(jobs, key=lambda j: order.get(j.state, 2)).id
    job = engine.get(st.session_state[JOB]) if jobs else None
    if len(jobs) > 1:
        if st.session_state.get(PICK) not in ids:
            st.session_state[PICK] = job.id if job else ids[0]
        labels = {j.id: _label(j) for j in jobs}  # format_func must not read the session
        pick = st.selectbox("Job to watch", ids, format_func=labels.__getitem__, key=PICK)
        job = engine.get(pick)
        st.session_state[JOB] = pick
    return job


def _label(job: Job) -> str:
    return train_form.job_label(job, visitor.display_name(job.owner, owner()))


CHART_EVERY = "3s"
"""How often the interactive charts and the probe digits redraw while a job trains. The light
live charts (core.live_chart) redraw every second: a redraw of three Plotly charts costs the
browser about five times what the SVG ones do, taken from training when the browser shares the
machine (benchmarks/bench_train_page.py)."""
CHARTS_DRAWN = "train_charts_drawn"
INTERACTIVE = "train_interactive"


def watch(job: Job, data: MnistData) -> None:
    """The live section: the chart settings and Stop, then the status and the charts.

    While the job trains with light charts, one fragment redraws the status and the charts every
    second; with interactive charts, the status ticks every second and the charts every
    CHART_EVERY once their first points are drawn. The probe digits redraw every CHART_EVERY.
    Widgets sit outside the fragments: a tick then redraws only text, a bar and three images.
    """
    st.subheader("Watch")
    c1, c2, c3 = st.columns([4, 2, 3], vertical_alignment="bottom")
    c1.slider(
        "Smoothing",
        0.0,
        0.99,
        0.6,
        key="train_smoothing",
        help="Exponential moving average of the per-batch curves, as in TensorBoard.",
    )
    c2.toggle(
        "Log-scale x",
        key="train_log_x",
        help="Spread out the first batches, where most of the learning happens.",
    )
    c3.toggle(
        "Interactive while training",
        key=INTERACTIVE,
        help="Hover and zoom on the charts while the job trains. Interactive charts cost the "
        "browser about five times the light live ones, which on a shared machine is time "
        "taken from training; they redraw every few seconds. When the job ends, the charts are "
        "interactive either way.",
    )
    _stop_button(job)
    running = not job.state.done
    interactive = bool(st.session_state.get(INTERACTIVE))
    if running and not interactive:
        st.fragment(run_every="1s")(_live_light)(job)
    else:
        st.fragment(run_every="1s" if running else None)(_live_status)(job)
        drawn = st.session_state.get(CHARTS_DRAWN) == job.id
        every = (CHART_EVERY if drawn else "1s") if running else None
        st.fragment(run_every=every)(_live_charts)(job, running and not drawn)
    st.fragment(run_every=CHART_EVERY if running else None)(_live_probes)(job, data)


def _live_light(job: Job) -> None:
    """The status and the light charts, in one tick."""
    snap = _live_status(job)
    log_x = bool(st.session_state.get("train_log_x"))
    smooth = st.session_state.get("train_smoothing", 0.6)
    args = (snap.batch_history, snap.epoch_history)
    for col, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        svg = live_chart.live_curves(*args, metric, smooth, snap.steps_per_epoch, log_x)
        col.markdown(svg, unsafe_allow_html=True)
    lr = live_chart.live_learning_rate(snap.batch_history, snap.steps_per_epoch, log_x)
    st.markdown(lr, unsafe_allow_html=True)
    _lr_caption()


def _live_status(job: Job) -> ProgressSnapshot:
    """State and progress; when the job ends, the whole page once (its results, the runs)."""
    snap = job.snapshot()
    _status(snap)
    if snap.state.done and st.session_state.get("train_seen_done") != job.id:
        st.session_state["train_seen_done"] = job.id
        st.rerun(scope="app")
    return snap


def _live_charts(job: Job, first_points: bool) -> None:
    """Loss, accuracy and learning rate as interactive Plotly charts: while the job trains (when
    the visitor asked for them) with lighter traces, once it ends with the full ones."""
    snap = job.snapshot()
    log_x = bool(st.session_state.get("train_log_x"))
    smooth = st.session_state.get("train_smoothing", 0.6)
    points = {} if snap.state.done else {"max_points": charts.LIVE_POINTS, "tail": charts.LIVE_TAIL}
    for col, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        col.plotly_chart(
            charts.training_curves(
                snap.batch_history,
                snap.epoch_history,
                metric,
                smooth,
                snap.steps_per_epoch,
                log_x=log_x,
                early_stopping=snap.early_stopping,
                **points,
            ),
            key=f"train_chart_{metric}",
        )
    st.plotly_chart(
        charts.learning_rate_curve(snap.batch_history, snap.steps_per_epoch, log_x=log_x, **points),
        key="train_chart_lr",
    )
    _lr_caption()
    if first_points and not snap.state.done and snap.batch_history.get("step"):
        # The first points are on screen: from now on the charts redraw every CHART_EVERY.
        st.session_state[CHARTS_DRAWN] = job.id
        st.rerun(scope="app")


def _lr_caption() -> None:
    st.caption(
        "Learning rate per batch: the size of each weight update, as the optimizer's schedule set it."
    )


def _live_probes(job: Job, data: MnistData) -> None:
    """The probe digits (they change once an epoch) and, once the job ends, its results."""
    snap = job.snapshot()
    _probes(job, snap, data)
    _results(snap)


def _stop_button(job: Job) -> None:
    """Stop: only the job's owner (or an operator) may press it. It sits outside the live
    fragments: pressing it reruns the page, which draws it disabled while the job stops."""
    state = job.state
    allowed = visitor.may_change(job.owner)
    st.button(
        "Stop",
        icon=":material/stop:",
        key="train_stop",
        on_click=job.stop,
        disabled=not allowed or state.done or state == JobState.STOPPING,
        help=None if allowed else "Only the visitor who started this job can stop it.",
    )


def _status(snap: ProgressSnapshot) -> None:
    state = snap.state
    text = f"{ICONS.get(state.value, '')} **{state.value.capitalize()}** — {snap.message}"
    if state == JobState.QUEUED:
        text += f" Place in the queue: **{snap.queue_position}**."
    (st.error if state == JobState.FAILED else st.markdown)(text)
    if state in (JobState.RUNNING, JobState.STOPPING) or state.done and snap.epoch:
        line = train_form.progress_text(snap)
        fired = (snap.early_stopping or {}).get("stopped_epoch")
        if fired:
            line += f" · early stopping ended it after epoch {fired}"
        elif state == JobState.STOPPED and snap.epochs_done % 1:
            line += f" · stopped after {snap.epochs_done:.2f} epochs"
        st.progress(snap.fraction, text=line)


def _probes(job: Job, snap: ProgressSnapshot, data: MnistData) -> None:
    if not snap.probe_predictions:
        return
    probs = snap.probe_predictions[-1]
    epochs = len(snap.probe_predictions) - 1
    partial = epochs == len(snap.epoch_history.get("epoch", [])) and snap.epochs_done % 1
    if epochs == 0:
        when = "before training"
    elif partial:
        when = f"when stopped, after {snap.epochs_done:.2f} epochs"
    else:
        when = f"after epoch {epochs}"
    st.markdown(f"**The network's guesses for a dozen test digits, {when}**")
    st.caption("Each digit's guess and how sure the network is: green when right, red when wrong.")
    cells = []
    for idx, p, label in zip(job.probe_index, probs, job.probe_labels, strict=True):
        guess, prob, right = train_form.probe_guess(p, label)
        png = base64.b64encode(_probe_png(data.description, int(idx), data)).decode()
        verdict = "right" if right else "wrong"
        cells.append(
            f'<figure class="probe {verdict}" style="margin:0;text-align:center">'
            f'<img src="data:image/png;base64,{png}" alt="test digit {label}" '
            'style="width:100%;max-width:84px;image-rendering:pixelated;border-radius:4px;'
            f'border:2px solid {PROBE_COLORS[right]}">'
            f'<figcaption><span style="color:{PROBE_COLORS[right]}">guess <b>{guess}</b> '
            f'({prob:.0%})</span><br><span style="opacity:0.6;font-size:0.85em">true {label}'
            "</span></figcaption></figure>"
        )
    # One element for the strip, not three per digit: it is redrawn every CHART_EVERY.
    st.html(
        '<div class="probe-strip" style="display:grid;gap:8px;'
        f'grid-template-columns:repeat({len(cells)},minmax(0,1fr))">{"".join(cells)}</div>'
    )


PROBE_COLORS = {True: "#3dd56d", False: "#ff6c6c"}  # Streamlit's :green[] and :red[] on dark


@st.cache_data(max_entries=64, show_spinner=False)
def _probe_png(description: str, idx: int, _data: MnistData) -> bytes:
    """A probe digit as PNG bytes, encoded once per data set: the strip is redrawn every
    second while a job trains. 64 entries of about 1 KB."""
    buf = io.BytesIO()
    Image.fromarray(enlarge(_data.x_test[idx], 3)).save(buf, format="PNG")
    return buf.getvalue()


def _results(snap: ProgressSnapshot) -> None:
    if not (snap.state == JobState.FINISHED or snap.state == JobState.STOPPED and snap.run_name):
        return
    if snap.test_metrics:
        m1, m2 = st.columns(2)
        m1.metric("Test accuracy", f"{snap.test_metrics['test_accuracy']:.2%}")
        m2.metric("Test loss", f"{snap.test_metrics['test_loss']:.4f}")
    if snap.run_name:
        c1, c2 = st.columns(2)
        c1.page_link(
            "pages/2_Explore.py",
            label=f"Explore the mistakes of {snap.run_name}",
            icon=":material/query_stats:",
            query_params={"run": snap.run_name},
        )
        c2.page_link(
            "pages/3_Draw.py",
            label=f"Draw digits for {snap.run_name}",
            icon=":material/draw:",
            query_params={"run": snap.run_name},
        )
