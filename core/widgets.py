"""The few Streamlit pieces every page shares: page setup, sidebar, run picker, cached resources.

This is the only module in core/ that imports Streamlit. TensorFlow is imported lazily, inside the
cached loaders, so the home page stays light.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import script_runner

from core.data import MnistData, load_mnist
from core.drawing import enlarge
from core.runs import DEFAULT_RUN, ExampleStore, RunError, RunInfo, RunStore

PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Train.py", "Train", ":material/model_training:"),
    ("pages/2_Explore.py", "Explore", ":material/query_stats:"),
    ("pages/3_Draw.py", "Draw", ":material/draw:"),
)
RUN_KEY = "run"
"""Session-state key of the run chosen in the sidebar (a plain key, so it survives page switches)."""


def _clean_without_clearing_keras() -> None:
    """Streamlit's after-run clean-up, minus keras.backend.clear_session()."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


# After every script run, and so after every fragment tick, Streamlit calls
# keras.backend.clear_session(): it empties TensorFlow's kernel cache and forces a full garbage
# collection while a job trains on another thread. Measured here, that made training with the
# Train page open 2.6x slower and each drawing's answer take 0.8 s. Digit Lab names its layers
# and models explicitly and never relies on Keras's global session state, so it skips that step.
script_runner._clean_problem_modules = _clean_without_clearing_keras


def runs_dir() -> Path:
    """Where runs are saved: $DIGITLAB_RUNS_DIR or ./runs."""
    return Path(os.environ.get("DIGITLAB_RUNS_DIR", "runs"))


def examples_dir() -> Path:
    """Where the visitor's labelled drawings are saved: $DIGITLAB_EXAMPLES_DIR or ./user_examples."""
    return Path(os.environ.get("DIGITLAB_EXAMPLES_DIR", "user_examples"))


# ----- cached resources (shared by every session; never mutate what they return) ---------------


@st.cache_resource(show_spinner="Loading MNIST…")
def get_data() -> MnistData:
    """MNIST, loaded once per process ($MNIST_DIR, else the Keras download, else the sample)."""
    return load_mnist()


@st.cache_resource
def get_registry():
    """The process-wide training-job registry ($DIGITLAB_MAX_JOBS jobs at once, default 1)."""
    from core.training import JobRegistry

    return JobRegistry(max_concurrent=int(os.environ.get("DIGITLAB_MAX_JOBS", "1")))


def get_store() -> RunStore:
    """The run store (cheap to create; reads the disk on demand)."""
    return RunStore(runs_dir())


def get_examples() -> ExampleStore:
    """The user-examples folder."""
    return ExampleStore(examples_dir())


def _model_stamp(info: RunInfo) -> float:
    try:
        return info.model_path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_model(name: str, path: str, stamp: float):
    return get_store().load_model(name)


def load_model(info: RunInfo):
    """A run's Keras model, loaded once per run file (RunError when it cannot be)."""
    return _load_model(info.name, str(info.path), _model_stamp(info))


@st.cache_resource(max_entries=4, show_spinner="Evaluating on the 10,000 test digits…")
def _evaluation(name: str, path: str, stamp: float, data_label: str):
    from core.evaluation import evaluate

    data = get_data()
    return evaluate(_load_model(name, path, stamp), data.x_test, data.y_test)


def get_evaluation(info: RunInfo):
    """The run's evaluation on the test set, computed once per run and cached."""
    return _evaluation(info.name, str(info.path), _model_stamp(info), get_data().label)


# ----- page frame ----------------------------------------------------------------------------


def setup_page(title: str, icon: str = ":material/pin:", wide: bool = True) -> None:
    """Every page's first call: page config, shared state, and the sidebar."""
    st.set_page_config(
        page_title=f"{title} · Digit Lab",
        page_icon=icon,
        layout="wide" if wide else "centered",
    )
    if RUN_KEY not in st.session_state:
        st.session_state[RUN_KEY] = st.query_params.get("run")
    elif "run" in st.query_params and st.query_params["run"] != st.session_state[RUN_KEY]:
        # A link such as Train's "open in Explore" names a run: it wins.
        st.session_state[RUN_KEY] = st.query_params["run"]
    with st.sidebar:
        st.markdown("### :material/grid_view: Digit Lab")
        for path, label, page_icon in PAGES:
            st.page_link(path, label=label, icon=page_icon)
        st.divider()


def list_runs() -> tuple[list[RunInfo], list]:
    """Saved runs (newest first, the shipped default model last) and unreadable ones."""
    return get_store().list_runs()


def run_label(info: RunInfo) -> str:
    """How a run is named in pickers: name, accuracy, and a mark for the default model."""
    acc = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "n/a"
    tag = " (shipped default)" if info.builtin else ""
    stopped = " (stopped)" if info.status == "stopped" else ""
    return f"{info.name}{tag}{stopped} · {acc}"


def run_picker() -> RunInfo | None:
    """The sidebar's run picker; returns the chosen run, or None when there is none."""
    runs, bad = list_runs()
    with st.sidebar:
        if not runs:
            st.info("No trained model yet: train one on the **Train** page.")
            return None
        names = [r.name for r in runs]
        wanted = st.session_state.get(RUN_KEY)
        index = names.index(wanted) if wanted in names else 0
        choice = st.selectbox(
            "Model",
            names,
            index=index,
            format_func=lambda n: run_label(runs[names.index(n)]),
            help="The trained run that Explore and Draw use. Train new ones on the Train page.",
        )
        st.session_state[RUN_KEY] = choice
        if st.query_params.get("run") != choice:
            st.query_params["run"] = choice
        if bad:
            st.warning(
                f"{len(bad)} run folder(s) could not be read: "
                + ", ".join(b.name for b in bad)
                + ". See the Train page."
            )
        return runs[names.index(choice)]


def data_caption(data: MnistData) -> None:
    """The sidebar's note on where the data came from."""
    with st.sidebar:
        if data.is_sample:
            st.warning(f"**Offline sample.** {data.description}.")
        else:
            st.caption(f"Data: {data.description}")


def load_run_model(info: RunInfo):
    """Load a run's model, or show a clear error and stop the page."""
    try:
        return load_model(info)
    except RunError as exc:
        st.error(str(exc))
        st.stop()


def image_grid(
    images: np.ndarray,
    captions: list[str],
    columns: int = 8,
    scale: int = 3,
) -> None:
    """Small digits in a grid with captions, enlarged without blurring."""
    if len(images) == 0:
        st.info("Nothing to show here.")
        return
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, img, cap in zip(
            cols, images[start : start + columns], captions[start : start + columns], strict=False
        ):
            col.image(enlarge(img, scale), caption=cap, width="stretch")


def default_run_name() -> str:
    """Name of the model that ships with the app."""
    return DEFAULT_RUN


@st.cache_resource(max_entries=4, show_spinner="Preparing the model for drawings…")
def _predictor(name: str, path: str, stamp: float):
    from core import explain

    model = _load_model(name, path, stamp)
    explain.check_model(model, name)
    return explain.Predictor(model), _calibration(name, path, stamp)


@st.cache_resource(max_entries=4, show_spinner="Calibrating the model's confidence…")
def _calibration(name: str, path: str, stamp: float):
    from core import explain

    info = get_store().get(name)
    data = get_data()
    if info.config.validation_split > 0:
        # The run held out the end of the training set: calibrate on exactly those digits.
        n = int(round(min(len(data.x_train), info.config.samples()) * info.config.validation_split))
        start = min(len(data.x_train), info.config.samples()) - n
        x, y = data.x_train[start : start + n], data.y_train[start : start + n]
    else:
        # No hold-out: the first half of the test set, which training never saw.
        half = len(data.x_test) // 2
        x, y = data.x_test[:half], data.y_test[:half]
    return explain.calibrate(_load_model(name, path, stamp), x, y)


def get_predictor(info: RunInfo):
    """(Predictor, Calibration) for a run, built once per run file."""
    return _predictor(info.name, str(info.path), _model_stamp(info))
