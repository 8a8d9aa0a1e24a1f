"""What the Explore views share: bounded caches of derived arrays, model checks, the digit grid.

Every per-run cache is keyed by `RunInfo.cache_key` and by the data's label, and every cache has
`max_entries`, so many visitors cannot grow memory without limit. Never mutate what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core import exploration
from core.evaluation import Evaluation
from core.models import ModelConfig
from core.runs import RunError, RunInfo
from ui import components, resources

if TYPE_CHECKING:
    import keras


# One entry: 10 mean and 10 spread images of 28x28 float32, 62 KB.
@st.cache_data(max_entries=4, show_spinner="Averaging the digits…")
def class_stats(split: str, data_label: str) -> exploration.ClassStats:
    """Each digit's mean image and spread in one split."""
    return exploration.class_stats(*exploration.split_arrays(resources.get_data(), split))


# One entry: 256 int64 counts, 2 KB.
@st.cache_data(max_entries=4, show_spinner=False)
def pixel_counts(split: str, data_label: str) -> np.ndarray:
    """How many pixels of one split take each value 0-255."""
    return exploration.pixel_counts(exploration.split_arrays(resources.get_data(), split)[0])


# One entry: the indices (int64) and 2-D coordinates (float32) of at most 2,000 digits, 31 KB.
# PCA, and t-SNE on each offered size: 3 entries per data source.
@st.cache_data(max_entries=6, show_spinner="Placing the digits on a map…")
def pixel_map(method: str, n: int, data_label: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, 2-D coordinates) of a subsample of test digits, mapped from their raw pixels."""
    x, y = resources.get_data().x_test, resources.get_data().y_test
    idx = exploration.subsample(y, n)
    return idx, exploration.project(exploration.pixels(x[idx]), method)


# One entry: as pixel_map's, 31 KB, for one run; 3 maps for each of 4 recent runs.
@st.cache_data(max_entries=12, show_spinner="Computing what the network sees in each digit…")
def _feature_map(
    key: str, method: str, n: int, data_label: str, _info: RunInfo
) -> tuple[np.ndarray, np.ndarray]:
    x, y = resources.get_data().x_test, resources.get_data().y_test
    idx = exploration.subsample(y, n)
    features = exploration.learned_features(resources.load_model(_info), x[idx])
    return idx, exploration.project(features, method)


def feature_map(info: RunInfo, method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, 2-D coordinates) of the same digits as pixel_map, mapped from learned features."""
    return _feature_map(info.cache_key, method, n, resources.get_data().label, info)


# One entry: 12 images of 28x28 float32, 37 KB; 64 entries are 2.4 MB.
@st.cache_data(max_entries=64, show_spinner="Augmenting…")
def augmented(
    split: str,
    index: int,
    rotation: float,
    zoom: float,
    shift: float,
    seed: int,
    elastic: float = 0.0,
    pen_width: float = 0.0,
) -> np.ndarray:
    """Random augmentations of one digit with the given rotation, zoom and shift, elastic warps
    and pen widths."""
    x, _ = exploration.split_arrays(resources.get_data(), split)
    config = ModelConfig(
        rotation=rotation, zoom=zoom, shift=shift, elastic=elastic, pen_width=pen_width
    )
    return exploration.augment_preview(x[index], config, count=exploration.AUGMENTATIONS, seed=seed)


# One entry: two 28x28 float32 maps (Grad-CAM, saliency), 6 KB; 128 entries are 0.8 MB.
@st.cache_data(max_entries=128, show_spinner="Looking at what the model attends to…")
def _attention(
    key: str, data_label: str, index: int, digit: int, _info: RunInfo
) -> dict[str, np.ndarray]:
    image = resources.get_data().x_test[index]
    return exploration.attention(resources.load_model(_info), image, digit)


def attention(info: RunInfo, index: int, digit: int) -> dict[str, np.ndarray]:
    """Grad-CAM and saliency of one test digit for one answer of the run's model."""
    return _attention(info.cache_key, resources.get_data().label, index, digit, info)


def model_or_error(info: RunInfo) -> keras.Model | None:
    """The run's cached model, or an error box (and None) when it cannot be read or used."""
    try:
        model = resources.load_model(info)
        problem = exploration.model_problem(model, info.name)
    except RunError as exc:
        model, problem = None, str(exc)
    if problem is None:
        return model
    st.error(problem, icon=":material/error:")
    return None


def evaluation_or_error(info: RunInfo) -> Evaluation | None:
    """The run's cached evaluation, or an error box (and None) when its model cannot be used."""
    return resources.get_evaluation(info) if model_or_error(info) is not None else None


def digit_grid(
    images: np.ndarray, indices: np.ndarray, captions: list[str], columns: int = 12
) -> None:
    """The images at `indices`, captioned, in a grid."""
    components.image_grid(images[indices], captions, columns=columns, scale=3)
