"""Train: tune the network, launch training, watch it live, stop it, compare runs."""

import uuid

import pandas as pd
import streamlit as st

from core import charts, train_form
from core.drawing import enlarge
from core.models import (
    LIMITS,
    OPTIMIZERS,
    PADDINGS,
    PRESETS,
    SCHEDULES,
    estimate_training_seconds,
)
from core.runs import RunError
from core.training import JobState, TrainingJob
from ui import frame, resources

frame.setup_page("Train", ":material/model_training:")
data = resources.get_data()
frame.data_caption(data)
frame.run_picker()
registry = resources.get_registry()
store = resources.get_store()
K = train_form.key
st.session_state.setdefault("train_owner", uuid.uuid4().hex[:8])

# ----- form state: from the URL on first load, else from the preset ------------------------------
if K("blocks") not in st.session_state:
    params = {k: v for k, v in st.query_params.to_dict().items() if k != "run"}
    if params or "train_form" not in st.session_state:
        state, st.session_state["train_link_notes"] = train_form.state_from_query(params)
    else:
        # Back from another page: Streamlit reset the widgets, the plain copy kept their values.
        state = st.session_state["train_form"]
    st.session_state.update(state)
for k, v in st.session_state.get("train_form", {}).items():
    st.session_state.setdefault(k, v)  # a hidden block's fields, dropped with its widgets


def apply_preset() -> None:
    """Fill every field from the chosen preset (keeping the data size)."""
    name = st.session_state[K("preset")]
    if name in PRESETS:
        keep = {
            K("subset"): st.session_state[K("subset")],
            K("samples"): st.session_state[K("samples")],
        }
        st.session_state.update(train_form.to_state(PRESETS[name]) | keep)
    st.session_state.pop("train_link_notes", None)


def mark_custom() -> None:
    st.session_state[K("preset")] = "custom"
    st.session_state.pop("train_link_notes", None)


st.session_state[K("samples")] = min(st.session_state[K("samples")], len(data.x_train))
config = train_form.from_state(st.session_state)
errors = config.errors()
st.session_state["train_form"] = {
    k: st.session_state[k] for k in train_form.form_keys() if k in st.session_state
}
# Keep the whole configuration in the address bar, so a link reproduces this setup.
query = config.to_query()
if any(st.query_params.get(k) != v for k, v in query.items()):
    st.query_params.update(query)
if config.train_samples is None and "train_samples" in st.query_params:
    del st.query_params["train_samples"]


shown: set[str] = set()


def show_error(*fields: str) -> None:
    for field in fields:
        if field in errors:
            st.error(errors[field], icon=":material/error:")
            shown.add(field)


st.title("Train a network")
st.caption(
    "Pick the tutorial's network or change it, press Train and watch it learn. "
    "The page's address holds the whole setup: share it to reproduce this run."
)
for note in st.session_state.get("train_link_notes", []):
    st.warning(note, icon=":material/link:")

# ----- tune -----------------------------------------------------------------------------------
form, side = st.columns([0.55, 0.45], gap="large")
with form:
    st.segmented_control(
        "Preset",
        [*PRESETS, "custom"],
        key=K("preset"),
        on_change=apply_preset,
        help="tutorial: the classic Keras example. fast: ≥99% in the least CPU time we measured. "
        "robust: augmentation, for real drawings. custom: your own.",
    )
    st.markdown("**Network**")
    c1, c2, c3 = st.columns(3)
    c1.number_input(
        "Conv blocks",
        1,
        4,
        key=K("blocks"),
        on_change=mark_custom,
        help="Each block: convolutions, then 2×2 max pooling and dropout.",
    )
    c2.radio(
        "Padding",
        PADDINGS,
        key=K("padding"),
        on_change=mark_custom,
        horizontal=True,
        help="valid shrinks each map by kernel−1 pixels; same keeps its size.",
    )
    c3.toggle(
        "Batch norm",
        key=K("batch_norm"),
        on_change=mark_custom,
        help="Normalise each conv layer's outputs: trains faster per epoch, costs CPU.",
    )
    show_error("conv_blocks", "padding")
    for i in range(st.session_state[K("blocks")]):
        b = lambda f, i=i: train_form.block_key(i, f)  # noqa: E731
        cols = st.columns([0.2, 0.17, 0.17, 0.2, 0.26], vertical_alignment="bottom")
        cols[0].number_input(
            f"Block {i + 1} filters",
            1,
            256,
            key=b("filters"),
            on_change=mark_custom,
            help="How many patterns this block learns to detect.",
        )
        cols[1].number_input(
            "Kernel",
            1,
            9,
            key=b("kernel_size"),
            on_change=mark_custom,
            help="Size of each filter, in pixels (3 = 3×3).",
        )
        cols[2].number_input(
            "Convs",
            1,
            3,
            key=b("convs"),
            on_change=mark_custom,
            help="Convolution layers in this block (the tutorial has 2).",
        )
        cols[3].checkbox(
            "Pool",
            key=b("pool"),
            on_change=mark_custom,
            help="2×2 max pooling: halve the map's size.",
        )
        cols[4].slider(
            "Dropout",
            0.0,
            0.9,
            step=0.05,
            key=b("dropout"),
            on_change=mark_custom,
            help="Share of activations dropped while training, against overfitting.",
        )
        for f in train_form.BLOCK_FIELDS:
            show_error(f"conv_blocks[{i}].{f}")
    c1, c2 = st.columns(2)
    c1.number_input(
        "Dense units",
        0,
        1024,
        step=16,
        key=K("dense_units"),
        on_change=mark_custom,
        help="Hidden fully connected layer before the output (0 = none).",
    )
    c2.slider(
        "Dense dropout",
        0.0,
        0.9,
        step=0.05,
        key=K("dense_dropout"),
        on_change=mark_custom,
        help="Dropout before the 10-way softmax output.",
    )
    show_error("dense_units", "dense_dropout")

    st.markdown("**Training**")
    c1, c2, c3 = st.columns(3)
    c1.selectbox(
        "Optimizer",
        OPTIMIZERS,
        key=K("optimizer"),
        on_change=mark_custom,
        help="Adam adapts each weight's step; SGD uses momentum 0.9.",
    )
    c2.number_input(
        "Learning rate",
        LIMITS["learning_rate"][0],
        LIMITS["learning_rate"][1],
        format="%.5f",
        step=0.0005,
        key=K("learning_rate"),
        on_change=mark_custom,
        help="Size of each update step (peak rate for schedules).",
    )
    c3.selectbox(
        "Schedule",
        SCHEDULES,
        key=K("lr_schedule"),
        on_change=mark_custom,
        help="one_cycle warms up then anneals; cosine and exponential decay.",
    )
    show_error("optimizer", "learning_rate", "lr_schedule")
    c1, c2, c3 = st.columns(3)
    c1.number_input(
        "Batch size",
        1,
        4096,
        key=K("batch_size"),
        on_change=mark_custom,
        help="Images per weight update.",
    )
    c2.number_input(
        "Epochs",
        1,
        100,
        key=K("epochs"),
        on_change=mark_custom,
        help="Passes over the training data.",
    )
    c3.number_input(
        "Seed",
        0,
        2**31 - 1,
        key=K("seed"),
        on_change=mark_custom,
        help="Same seed, same starting weights and shuffling.",
    )
    show_error("batch_size", "epochs", "seed")
    st.slider(
        "Validation split",
        0.0,
        0.5,
        step=0.05,
        key=K("validation_split"),
        on_change=mark_custom,
        help="Share of the training data held out to watch for overfitting.",
    )
    show_error("validation_split")
    with st.expander("Augmentation and callbacks"):
        aug = st.toggle(
            "Augment (random rotation, zoom, shift)",
            key=K("augment"),
            on_change=mark_custom,
            help="Shows the network shifted, turned and "
            "resized digits, so it copes with real handwriting.",
        )
        c1, c2, c3 = st.columns(3)
        c1.slider(
            "Rotation (°)",
            0.0,
            45.0,
            key=K("rotation"),
            disabled=not aug,
            on_change=mark_custom,
            help="Largest random turn, in degrees, either way.",
        )
        c2.slider(
            "Zoom",
            0.0,
            0.5,
            key=K("zoom"),
            disabled=not aug,
            on_change=mark_custom,
            help="Largest random zoom in or out, as a share of the size.",
        )
        c3.slider(
            "Shift",
            0.0,
            0.3,
            key=K("shift"),
            disabled=not aug,
            on_change=mark_custom,
            help="Largest random move, as a share of the width and height.",
        )
        c1, c2, c3 = st.columns(3)
        c1.checkbox(
            "Early stopping",
            key=K("early_stopping"),
            on_change=mark_custom,
            help="Stop when validation loss stops improving; keep the best weights.",
        )
        c2.checkbox(
            "Reduce LR on plateau",
            key=K("reduce_lr_on_plateau"),
            on_change=mark_custom,
            help="Halve the learning rate when validation loss stalls.",
        )
        c3.number_input(
            "Patience",
            1,
            20,
            key=K("patience"),
            on_change=mark_custom,
            help="Epochs without improvement before acting.",
        )
        st.checkbox(
            "Stop on NaN loss",
            key=K("terminate_on_nan"),
            on_change=mark_custom,
            help="End the job with a clear message when the loss diverges.",
        )
    # Under the expander, not in it: a message inside a closed expander is easy to miss.
    show_error("rotation", "zoom", "shift", "reduce_lr_on_plateau", "patience")

    st.markdown("**Data**")
    c1, c2 = st.columns(2)
    c1.toggle(
        "Use only part of the training set",
        key=K("subset"),
        help="A few thousand digits train in seconds: good for a quick try.",
    )
    c2.number_input(
        "Training samples",
        100,
        len(data.x_train),
        step=1000,
        key=K("samples"),
        disabled=not st.session_state[K("subset")],
        help="The first N digits of the training set.",
    )
    show_error("train_samples")
    examples = resources.get_examples()
    n_examples = examples.count()
    use_examples = st.checkbox(
        f"Add my {n_examples} labelled drawing(s) from the Draw page",
        key="train_use_examples",
        disabled=n_examples == 0,
        help="Drawings you corrected on the Draw page (Teach it back) join the training digits."
        if n_examples
        else "Correct a drawing on the Draw page (Teach it back) to add it here.",
    )
    st.caption(f"Data: {data.label}. {data.description}.")

with side:
    st.markdown("**Model summary**")
    if errors:
        st.warning("Fix the highlighted fields to see the model.", icon=":material/warning:")
    else:
        rows, total = st.cache_data(train_form.summary_rows, show_spinner=False)(config)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        n_train = config.samples(len(data.x_train))
        st.markdown(
            f"**{total:,} parameters** · {n_train:,} training digits · "
            f"≈ **{estimate_training_seconds(config, len(data.x_train)):.0f} s** on 2 cores"
        )

# ----- launch and watch -----------------------------------------------------------------------


def start_job() -> None:
    cfg = train_form.from_state(st.session_state)
    extra = examples.load() if st.session_state.get("train_use_examples") else None
    job = TrainingJob(
        cfg, data, store=store, extra_examples=extra, owner=st.session_state.train_owner
    )
    registry.submit(job)
    st.session_state["train_job"] = job.id
    st.session_state["train_job_pick"] = job.id  # the watch picker follows the new job


mine = [j for j in registry.jobs(st.session_state.train_owner) if not j.state.done]
st.button(
    "Train",
    type="primary",
    icon=":material/play_arrow:",
    key="train_start",
    on_click=start_job,
    disabled=bool(errors) or bool(mine),
    help="Fix the fields marked in red first."
    if errors
    else "Your job is still running: stop it or let it finish first."
    if mine
    else None,
)
if errors:
    unshown = [errors[f] for f in errors if f not in shown]
    st.error(
        "Nothing starts until the fields marked above are fixed."
        + "".join(f"\n- {message}" for message in unshown)
    )

jobs = registry.jobs()
if "train_job" not in st.session_state and jobs:
    # A reloaded tab reattaches to the job that is training, else the next in line, else the latest.
    order = {JobState.RUNNING: 0, JobState.STOPPING: 0, JobState.QUEUED: 1}
    st.session_state["train_job"] = min(jobs, key=lambda j: order.get(j.state, 2)).id
job = registry.get(st.session_state.get("train_job", "")) if jobs else None
if len(jobs) > 1:
    ids = [j.id for j in jobs]
    if st.session_state.get("train_job_pick") not in ids:
        st.session_state["train_job_pick"] = job.id if job else ids[0]
    pick = st.selectbox(
        "Job to watch",
        ids,
        format_func=lambda i: (
            train_form.job_label(registry.get(i), st.session_state.train_owner)
            if registry.get(i)
            else i
        ),
        key="train_job_pick",
    )
    job = registry.get(pick)
    st.session_state["train_job"] = pick


@st.fragment(run_every="1s" if job is not None and not job.state.done else None)
def live(job: TrainingJob) -> None:
    snap = job.snapshot()
    icons = {
        "queued": ":material/hourglass_top:",
        "running": ":material/directions_run:",
        "stopping": ":material/front_hand:",
        "stopped": ":material/stop_circle:",
        "finished": ":material/check_circle:",
        "failed": ":material/error:",
    }
    status = (
        f"{icons.get(snap.state.value, '')} **{snap.state.value.capitalize()}** — {snap.message}"
    )
    if snap.state == JobState.QUEUED:
        status += f" Place in the queue: **{snap.queue_position}**."
    (st.error if snap.state == JobState.FAILED else st.markdown)(status)
    if snap.state in (JobState.RUNNING, JobState.STOPPING) or snap.state.done and snap.epoch:
        st.progress(snap.fraction, text=train_form.progress_text(snap))
    st.button(
        "Stop",
        icon=":material/stop:",
        key="train_stop",
        on_click=job.stop,
        disabled=snap.state.done or snap.state == JobState.STOPPING,
    )
    smooth = st.session_state.get("train_smoothing", 0.6)
    c1, c2 = st.columns(2)
    for col, metric in ((c1, "loss"), (c2, "accuracy")):
        col.plotly_chart(
            charts.training_curves(
                snap.batch_history, snap.epoch_history, metric, smooth, snap.steps_per_epoch
            ),
            key=f"train_chart_{metric}",
        )
    if snap.probe_predictions:
        probs = snap.probe_predictions[-1]
        when = (
            "before training"
            if len(snap.probe_predictions) == 1
            else f"after epoch {len(snap.probe_predictions) - 1}"
        )
        st.markdown(f"**The network's guesses for a dozen test digits, {when}**")
        st.caption(
            "Each digit's guess and how sure the network is: green when right, red when wrong."
        )
        cols = st.columns(len(job.probe_index))
        for col, idx, p, label in zip(cols, job.probe_index, probs, job.probe_labels, strict=True):
            guess, prob, right = train_form.probe_guess(p, label)
            col.image(enlarge(data.x_test[idx], 3), width="stretch")
            col.markdown(f":{'green' if right else 'red'}[guess **{guess}** ({prob:.0%})]")
            col.caption(f"true {label}")
    if snap.state == JobState.FINISHED or snap.state == JobState.STOPPED and snap.run_name:
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
    if snap.state.done and st.session_state.get("train_seen_done") != job.id:
        st.session_state["train_seen_done"] = job.id
        st.rerun(scope="app")


if job is not None:
    st.subheader("Watch")
    st.slider(
        "Smoothing",
        0.0,
        0.99,
        0.6,
        key="train_smoothing",
        help="Exponential moving average of the per-batch curves, as in TensorBoard.",
    )
    live(job)

# ----- runs -----------------------------------------------------------------------------------
st.subheader("Runs")
runs, bad = store.list_runs()
for b in bad:
    st.warning(f"Run folder **{b.name}** is unreadable and was skipped: {b.reason}")
if not runs:
    st.info("No saved runs yet: train one above.")
    st.stop()
table = pd.DataFrame([r.row() for r in runs])
table["test_accuracy"] = table["test_accuracy"] * 100
picked = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="multi-row",
    key="train_runs_table",
    column_config={
        "test_accuracy": st.column_config.NumberColumn("test accuracy", format="%.2f%%"),
        "train_seconds": st.column_config.NumberColumn("train s", format="%.1f"),
        "learning_rate": st.column_config.NumberColumn("lr", format="%.4g"),
    },
)
chosen = [runs[i] for i in picked.selection.rows] if picked else []
view = st.segmented_control(
    "Compare",
    ["Curves of the selected runs", "Hyperparameters vs accuracy"],
    default="Curves of the selected runs",
    key="train_compare",
)
if view == "Curves of the selected runs":
    if not chosen:
        st.caption("Select rows in the table to overlay their curves.")
    else:
        metric = st.radio(
            "Metric", ["accuracy", "loss"], horizontal=True, key="train_overlay_metric"
        )
        st.plotly_chart(
            charts.runs_overlay({r.name: r.history for r in chosen}, metric), key="train_overlay"
        )
elif view:
    st.plotly_chart(
        charts.parallel_coordinates(
            train_form.parallel_rows(runs), list(train_form.PARALLEL_DIMENSIONS)
        ),
        key="train_parallel",
    )

with st.expander("Manage a run: rename, delete, download"):
    names = [r.name for r in runs]
    name = st.selectbox("Run", names, key="train_manage_run")
    info = runs[names.index(name)]
    c1, c2, c3 = st.columns(3)
    new = c1.text_input("New name", value=name, key=f"train_rename_{name}", disabled=info.builtin)
    if c1.button("Rename", key="train_rename", disabled=info.builtin or new == name):
        try:
            store.rename(name, new)
            st.rerun()
        except RunError as exc:
            c1.error(str(exc))
    sure = c2.checkbox(
        "Yes, delete it",
        key=f"train_sure_{name}",
        disabled=info.builtin,
        help="The shipped default model cannot be deleted." if info.builtin else None,
    )
    if c2.button("Delete", key="train_delete", disabled=info.builtin or not sure, type="secondary"):
        try:
            store.delete(name)
            st.rerun()
        except RunError as exc:
            c2.error(str(exc))
    c3.download_button(
        "Download .keras",
        data=lambda: store.model_bytes(name),  # read the file only when it is downloaded
        file_name=f"{name}.keras",
        mime="application/octet-stream",
        key="train_download",
    )
