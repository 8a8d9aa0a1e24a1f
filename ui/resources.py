"""Cached loaders shared by every session: MNIST, the job registry, run models and what is derived
from them. Never mutate what they return. One cache key per run everywhere: `RunInfo.cache_key`.

TensorFlow is imported lazily, inside the loaders that need it, so the home page stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.data import MnistData, load_mnist
from core.runs import ExampleStore, RunInfo, RunStore, UnreadableRun

if TYPE_CHECKING:
    import keras

    from core.engine import Engine
    from core.evaluation import Evaluation
    from core.explain import Calibration, Predictor

# Bounded caches: a Keras model of the sizes Digit Lab trains takes 5-30 MB once loaded.
MAX_MODELS = 4
# Calibration runs the model eagerly over 6,000 digits: 1,000 at a time peaked 500 MB above the
# server's size (the default model), 250 at a time 260 MB.
CALIBRATION_BATCH = 250


def runs_dir() -> Path:
    """Where runs are saved: $DIGITLAB_RUNS_DIR or ./runs."""
    return Path(os.environ.get("DIGITLAB_RUNS_DIR", "runs"))


def examples_dir() -> Path:
    """Where labelled drawings are saved: $DIGITLAB_EXAMPLES_DIR or ./user_examples."""
    return Path(os.environ.get("DIGITLAB_EXAMPLES_DIR", "user_examples"))


@st.cache_resource(show_spinner="Loading MNIST…")
def get_data() -> MnistData:
    """MNIST, loaded once per process ($MNIST_DIR, else the Keras download, else the sample)."""
    return load_mnist()


def setting(name: str) -> str | None:
    """A deployment setting: the environment first, then Streamlit's secrets (Community Cloud)."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - no secrets file, or an unreadable one: not set
        return None
    return None if value is None else str(value)


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    """The process-wide training engine: RQ on Redis when DIGITLAB_REDIS_URL is set, else jobs
    on threads of this process ($DIGITLAB_MAX_JOBS at once, default 1)."""
    from core.engine import MAX_JOBS_SETTING, REDIS_SETTING, make_engine

    settings = {name: setting(name) or "" for name in (REDIS_SETTING, MAX_JOBS_SETTING)}
    store = get_store()
    store.clean_temporary()  # half-written folders of a server that died
    return make_engine(get_data(), store, settings)


def get_store() -> RunStore:
    """The run store (cheap to create; reads the disk on demand)."""
    return RunStore(runs_dir())


def get_examples(owner: str | None) -> ExampleStore:
    """One visitor's labelled drawings."""
    return ExampleStore(examples_dir(), owner)


def list_runs() -> tuple[list[RunInfo], list[UnreadableRun]]:
    """Saved runs (newest first, the shipped default model last) and unreadable ones."""
    return get_store().list_runs()


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Loading the model…")
def _model(key: str, _info: RunInfo):
    return get_store().load_model(_info.name)


def load_model(info: RunInfo) -> keras.Model:
    """A run's Keras model, loaded once per run file (RunError when it cannot be)."""
    return _model(info.cache_key, info)


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Evaluating on the 10,000 test digits…")
def _evaluation(key: str, data_label: str, _info: RunInfo):
    from core.evaluation import evaluate

    data = get_data()
    return evaluate(load_model(_info), data.x_test, data.y_test)


def get_evaluation(info: RunInfo) -> Evaluation:
    """The run's evaluation on the test set, computed once per run and cached."""
    return _evaluation(info.cache_key, get_data().label, info)


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Preparing the model for drawings…")
def _predictor(key: str, data_label: str, _info: RunInfo):
    from core import explain

    model = load_model(_info)
    explain.check_model(model, _info.name)
    return explain.Predictor(model), _calibration(key, data_label, _info)


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Calibrating the model's confidence…")
def _calibration(key: str, data_label: str, _info: RunInfo):
    from core import explain
    from core.data import held_out

    x, y = held_out(get_data(), _info.config)
    return explain.calibrate(load_model(_info), x, y, batch_size=CALIBRATION_BATCH)


def get_predictor(info: RunInfo) -> tuple[Predictor, Calibration]:
    """(Predictor, Calibration) for a run, built once per run file."""
    return _predictor(info.cache_key, get_data().label, info)
