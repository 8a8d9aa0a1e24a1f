"""What the Explore page shows, as plain arrays: dataset views, maps, and views of a model's errors.

No Streamlit here. Keras and TensorFlow are imported only inside the functions that need a model
or an augmentation layer, so the dataset views stay light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.data import IMAGE_SIZE, NUM_CLASSES, MnistData, one_hot, preprocess_images
from core.evaluation import Evaluation
from core.models import ModelConfig, augmentation_layers
from core.runs import RunInfo

if TYPE_CHECKING:
    import keras

SPLITS = ("train", "test")
GRID_PAGE = 32
"""Images per page of the sample grid."""
MAP_SAMPLES = 2000
"""Test digits drawn on the 2-D maps (PCA is instant on this many)."""
TSNE_SAMPLES = (1000, 2000)
"""Subsample sizes offered for t-SNE (about 2 s and 6 s on 2 cores)."""
TSNE_PCA_DIMS = 50
HISTOGRAM_CHUNK = 1 << 16
SHOWN = 24
"""Images per gallery (map selection, confusion cell, mistakes, comparison)."""
AUGMENTATIONS = 12
"""Random augmentations drawn of one digit."""


# ----- the dataset ---------------------------------------------------------------------------


def split_arrays(data: MnistData, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of "train" or "test"."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
    return (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)


def shape_lines(data: MnistData) -> str:
    """The shapes as the tutorial prints them, before and after its preprocessing."""
    lines = [f"{name} shape: {shape}" for name, shape in data.shapes().items()]
    n_train, n_test = len(data.x_train), len(data.x_test)
    lines += [
        "",
        "# after reshape, scaling, one-hot:",
        f"x_train shape: {(n_train, IMAGE_SIZE, IMAGE_SIZE, 1)}",
        f"y_train shape: {(n_train, NUM_CLASSES)}",
        f"{n_train} train samples",
        f"{n_test} test samples",
    ]
    return "\n".join(lines)


def filter_indices(
    labels: np.ndarray, label: int | None = None, within: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the samples of one digit (every digit when None), optionally only among `within`."""
    labels = np.asarray(labels)
    candidates = np.arange(len(labels)) if within is None else np.asarray(within, dtype=np.int64)
    if label is None:
        return candidates
    return candidates[labels[candidates] == label]


@dataclass(frozen=True)
class GridPage:
    """One page of a filtered list of samples."""

    indices: np.ndarray
    page: int
    """1-based, clamped to the pages that exist."""
    pages: int
    total: int


def page_of(indices: np.ndarray, page: int, per_page: int = GRID_PAGE) -> GridPage:
    """The `page`-th slice of `indices` (clamped, so a stale page number never shows nothing)."""
    indices = np.asarray(indices)
    pages = max(1, math.ceil(len(indices) / per_page))
    page = min(max(1, int(page)), pages)
    start = (page - 1) * per_page
    return GridPage(indices[start : start + per_page], page, pages, len(indices))


def grid_caption(grid: GridPage, split: str) -> str:
    """Which slice of the matches a sample grid shows, and how to read its captions."""
    first = (grid.page - 1) * GRID_PAGE + 1
    return (
        f"{first:,}–{first + len(grid.indices) - 1:,} of {grid.total:,} "
        f"(page {grid.page} of {grid.pages}). Each caption: index in the {split} set · label."
    )


def label_captions(indices: np.ndarray, labels: np.ndarray) -> list[str]:
    """Captions "#index · label" for the images at `indices`."""
    return [f"#{i} · {labels[i]}" for i in indices]


@dataclass(frozen=True)
class ClassStats:
    """Each digit's mean image and pixel spread, both in [0, 1] units of ink."""

    mean: np.ndarray
    """(10, 28, 28) float32."""
    std: np.ndarray
    """(10, 28, 28) float32."""
    counts: np.ndarray


def class_stats(images: np.ndarray, labels: np.ndarray) -> ClassStats:
    """Mean image and standard deviation of every digit (zeros for a digit with no samples)."""
    labels = np.asarray(labels)
    mean = np.zeros((NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    std = np.zeros_like(mean)
    counts = np.bincount(labels.astype(np.int64), minlength=NUM_CLASSES)
    for digit in range(NUM_CLASSES):
        if counts[digit]:
            # One digit at a time: a float copy of the whole training set would be 188 MB.
            x = images[labels == digit].astype(np.float32) / 255.0
            mean[digit] = x.mean(axis=0)
            std[digit] = x.std(axis=0)
    return ClassStats(mean, std, counts)


def relative_spread(stats: ClassStats) -> np.ndarray:
    """Each digit's pixel spread scaled so the largest is 1, so it shows as an image."""
    return stats.std / max(float(stats.std.max()), 1e-6)


def pixel_counts(images: np.ndarray) -> np.ndarray:
    """How many pixels take each value 0-255 (a (256,) int64 array)."""
    flat = np.asarray(images, dtype=np.uint8).reshape(-1)
    counts = np.zeros(256, np.int64)
    # In chunks: bincount converts its input to 64-bit integers, 8x the uint8 size.
    for start in range(0, flat.size, HISTOGRAM_CHUNK):
        counts += np.bincount(flat[start : start + HISTOGRAM_CHUNK], minlength=256)
    return counts


def background_caption(counts: np.ndarray, split: str) -> str:
    """What the pixel histogram says: the share of pure black background, and where the ink is."""
    return (
        f"{counts[0] / counts.sum():.0%} of the {split} pixels are pure black background; "
        "the ink is mostly near 255, with soft edges in between."
    )


# ----- the tutorial's preprocessing on one sample --------------------------------------------


@dataclass(frozen=True)
class PreprocessingSteps:
    """One sample through the tutorial's preprocessing, step by step."""

    raw: np.ndarray
    """(28, 28) uint8, 0-255: what mnist.load_data() returns."""
    reshaped: np.ndarray
    """(28, 28, 1) uint8: a channel axis for Conv2D."""
    scaled: np.ndarray
    """(28, 28, 1) float32 in [0, 1]: what the network is fed."""
    label: int
    one_hot: np.ndarray
    """(10,) float32: what the loss compares the output with."""


def preprocessing_steps(image: np.ndarray, label: int) -> PreprocessingSteps:
    """Reshape, scale and one-hot one sample exactly as the training pipeline does."""
    raw = np.asarray(image, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return PreprocessingSteps(
        raw=raw,
        reshaped=raw.reshape(IMAGE_SIZE, IMAGE_SIZE, 1),
        scaled=preprocess_images(raw[None])[0],
        label=int(label),
        one_hot=one_hot(np.array([label]))[0],
    )


def preprocessing_code(steps: PreprocessingSteps, split: str, index: int) -> str:
    """The tutorial's lines applied to one sample, each with what it produced as a comment."""
    hot = ", ".join(f"{v:.0f}." for v in steps.one_hot)
    lines = [
        (f"x = x_{split}[{index}]", f"{steps.raw.shape} {steps.raw.dtype}, 0 … {steps.raw.max()}"),
        (
            "x = x.reshape(28, 28, 1)",
            f"{steps.reshaped.shape} {steps.reshaped.dtype}: a channel axis",
        ),
        (
            'x = x.astype("float32") / 255',
            f"{steps.scaled.shape} {steps.scaled.dtype}, {steps.scaled.min():.1f} … "
            f"{steps.scaled.max():.1f}",
        ),
        (f"y = to_categorical(y_{split}[{index}], 10)", f"{steps.label} → [{hot}]"),
    ]
    width = max(len(code) for code, _ in lines) + 2
    return "\n".join(f"{code:<{width}}# {comment}" for code, comment in lines)


def ink_window(image: np.ndarray, size: int = 8) -> tuple[slice, slice]:
    """A size x size window centred on the ink's centre of mass, to print pixel values legibly."""
    image = np.asarray(image, dtype=np.float64).reshape(IMAGE_SIZE, IMAGE_SIZE)
    total = image.sum()
    if total > 0:
        rows, cols = np.indices(image.shape)
        centre = (float((rows * image).sum() / total), float((cols * image).sum() / total))
    else:
        centre = (IMAGE_SIZE / 2, IMAGE_SIZE / 2)
    starts = [int(np.clip(round(c - size / 2), 0, IMAGE_SIZE - size)) for c in centre]
    return slice(starts[0], starts[0] + size), slice(starts[1], starts[1] + size)


def pixel_text(image: np.ndarray, fmt: str = "{:.0f}") -> list[list[str]]:
    """Each pixel's value as text for a heatmap."""
    image = np.asarray(image)
    return [[fmt.format(v) for v in row] for row in image.tolist()]


def window_rect(rows: slice, cols: slice) -> dict[str, float]:
    """The corners of a pixel window as a Plotly rectangle (pixel centres are whole numbers)."""
    return dict(x0=cols.start - 0.5, x1=cols.stop - 0.5, y0=rows.start - 0.5, y1=rows.stop - 0.5)


@dataclass(frozen=True)
class PixelPatch:
    """A window of one preprocessing step, printed pixel by pixel."""

    key: str
    title: str
    values: np.ndarray
    fmt: str
    top: float
    """The colour scale's maximum (255 before scaling, 1 after)."""


def pixel_patches(steps: PreprocessingSteps, rows: slice, cols: slice) -> list[PixelPatch]:
    """The ink window before and after scaling, with the titles and number formats to print."""
    return [
        PixelPatch(
            "before",
            "2. Reshaped to (28, 28, 1): the boxed patch, 0–255",
            steps.reshaped[rows, cols, 0],
            "{:.0f}",
            255,
        ),
        PixelPatch("after", "3. Scaled: float32, 0–1", steps.scaled[rows, cols, 0], "{:.2f}", 1),
    ]


def one_hot_table(steps: PreprocessingSteps) -> dict[str, list[int]]:
    """The one-hot label as a one-row table, one column per digit."""
    return {str(d): [int(v)] for d, v in enumerate(steps.one_hot)}


# ----- augmentation --------------------------------------------------------------------------


def augment_preview(
    image: np.ndarray, config: ModelConfig, count: int = 12, seed: int = 0
) -> np.ndarray:
    """`count` random augmentations of one digit: (count, 28, 28) float32 in [0, 1]: the
    training pipeline's elastic warps and pen widths (core.distort) first, then the model's
    rotation, zoom and shift layers, as training shows them."""
    import keras

    batch = np.repeat(preprocess_images(np.asarray(image)[None]), count, axis=0)
    if config.elastic > 0 or config.pen_width > 0:
        import tensorflow as tf

        from core import distort

        pair = tf.constant([seed + 1, 0], tf.int64)
        batch = distort.apply(tf.constant(batch), pair, config.elastic, config.pen_width).numpy()
    pipeline = keras.Sequential(augmentation_layers(config, seed), name="augmentation")
    if not pipeline.layers:
        return batch[..., 0].astype(np.float32)
    out = keras.ops.convert_to_numpy(pipeline(batch, training=True))
    return np.clip(out[..., 0], 0.0, 1.0).astype(np.float32)


def augmentation_base(run: RunInfo | None) -> tuple[ModelConfig, str]:
    """The augmentation to start from (the run's when it augments, else the defaults), and whose."""
    if run is not None and (run.config.augment or run.config.elastic or run.config.pen_width):
        return run.config, f"as run **{run.name}** trains"
    return ModelConfig(), "the Train page's defaults"


# ----- 2-D maps ------------------------------------------------------------------------------


def subsample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n sample indices drawn without replacement (all of them when there are fewer), sorted."""
    total = len(labels)
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


def pixels(images: np.ndarray) -> np.ndarray:
    """Images as (n, 784) float32 rows in [0, 1]."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0


def learned_features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """What the network learned to see: the input of its last Dense layer, (n, d)."""
    from core.explain import feature_extractor

    return feature_extractor(model)(np.asarray(images, dtype=np.uint8))


def project(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of the rows of features by "pca" or "tsne"."""
    from sklearn.decomposition import PCA

    features = np.asarray(features, dtype=np.float32)
    n, d = features.shape
    if n < 3:
        return np.zeros((n, 2), np.float32)
    if method == "pca":
        return PCA(2, random_state=seed).fit_transform(features).astype(np.float32)
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', not {method!r}.")
    from sklearn.manifold import TSNE

    if d > TSNE_PCA_DIMS and n > TSNE_PCA_DIMS:
        # t-SNE's usual first step: PCA to 50 dimensions keeps the structure and is 10x faster.
        features = PCA(TSNE_PCA_DIMS, random_state=seed).fit_transform(features)
    tsne = TSNE(2, init="pca", perplexity=min(30.0, (n - 1) / 3), random_state=seed)
    return tsne.fit_transform(features).astype(np.float32)


def map_sample(method: str, tsne_samples: int) -> tuple[str, int]:
    """(method key, how many test digits) a map of "PCA" or "t-SNE" is drawn on."""
    return ("tsne", tsne_samples) if method == "t-SNE" else ("pca", MAP_SAMPLES)


def selection(chosen: list[int], shown: int = SHOWN) -> tuple[list[int], str]:
    """The distinct digits selected on the maps (the first `shown` of them) and their heading."""
    chosen = list(dict.fromkeys(chosen))
    more = f", the first {shown} shown" if len(chosen) > shown else ""
    heading = f"Selected on the map: {len(chosen):,} digit{'s' * (len(chosen) > 1)}{more}"
    return chosen[:shown], heading


# ----- a model's errors ----------------------------------------------------------------------


def prob_caption(index: int, probabilities: np.ndarray, *digits: int) -> str:
    """Caption "#1234 p(9)=0.87 p(4)=0.12": the image's index and the probability of each digit."""
    probs = " ".join(f"p({int(d)})={float(probabilities[d]):.2f}" for d in dict.fromkeys(digits))
    return f"#{int(index)} {probs}"


def error_caption(ev: Evaluation, index: int) -> str:
    """Caption "#1234 7→2 (0.99)": index, true digit, answer and its probability."""
    true, pred = int(ev.labels[index]), int(ev.predictions[index])
    return f"#{int(index)} {true}→{pred} ({float(ev.confidence[index]):.2f})"


def cell_heading(true: int, predicted: int, count: int, shown: int = SHOWN) -> str:
    """What a confusion cell holds: "True 4, predicted 9: 31 images · the 24 surest shown"."""
    heading = f"True {true}, predicted {predicted}: {count:,} image{'s' if count != 1 else ''}"
    return heading + (f" · the {shown} surest shown" if count > shown else "")


def cell_captions(ev: Evaluation, indices: np.ndarray, true: int, predicted: int) -> list[str]:
    """Captions with the probability of the answer and of the true digit, for a cell's images."""
    return [prob_caption(i, ev.probabilities[i], predicted, true) for i in indices]


def cell_indices(ev: Evaluation, true: int, predicted: int) -> np.ndarray:
    """The test images of digit `true` answered `predicted`, the surest answers first."""
    idx = ev.cell(true, predicted)
    return idx[np.argsort(-ev.probabilities[idx, predicted], kind="stable")]


def most_confused(cm: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal cell; (0, 0) when there is no mistake."""
    off = np.asarray(cm, dtype=np.int64).copy()
    np.fill_diagonal(off, -1)
    if off.max() <= 0:
        return 0, 0
    true, pred = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(true), int(pred)


def per_class_table(ev: Evaluation) -> dict[str, list]:
    """Columns digit, precision, recall, F1 (percent), support and mistakes of each digit."""
    mistakes = ev.support - np.diag(ev.confusion)
    return {
        "digit": list(range(len(ev.support))),
        "precision %": np.round(ev.precision * 100, 2).tolist(),
        "recall %": np.round(ev.recall * 100, 2).tolist(),
        "F1 %": np.round(ev.f1 * 100, 2).tolist(),
        "support": ev.support.astype(int).tolist(),
        "mistakes": mistakes.astype(int).tolist(),
    }


MISTAKE_VIEWS = {
    "Most confident mistakes": "most_confident_mistakes",
    "Hardest (highest loss)": "hardest",
    "Least confident correct": "least_confident_correct",
}


def mistakes(ev: Evaluation, view: str, k: int = SHOWN) -> np.ndarray:
    """Indices for one of MISTAKE_VIEWS (by its label)."""
    return getattr(ev, MISTAKE_VIEWS[view])(k)


def first_mistake(ev: Evaluation) -> int:
    """The test image shown in detail at first: the first mistake (0 when there is none)."""
    return int(ev.misclassified[0]) if len(ev.misclassified) else 0


def detail_title(index: int, true: int, predicted: int) -> str:
    """One test digit and the model's answer: "#8: a 5, answered 3 (wrong)"."""
    verdict = "right" if true == predicted else "wrong"
    return f"#{index}: a {true}, answered {predicted} ({verdict})"


@dataclass(frozen=True)
class RunComparison:
    """Two runs' evaluations on the same test set, side by side."""

    accuracy_a: np.ndarray
    """Per-class accuracy (recall) of run A."""
    accuracy_b: np.ndarray
    only_a: np.ndarray
    """Test images A gets right and B gets wrong."""
    only_b: np.ndarray
    both_wrong: int


def compare(ev_a: Evaluation, ev_b: Evaluation) -> RunComparison:
    """Per-class accuracies and the images one run gets right and the other wrong."""
    if len(ev_a.labels) != len(ev_b.labels) or not np.array_equal(ev_a.labels, ev_b.labels):
        raise ValueError("The two evaluations are not on the same test images.")
    right_a = ev_a.predictions == ev_a.labels
    right_b = ev_b.predictions == ev_b.labels
    return RunComparison(
        accuracy_a=ev_a.recall,
        accuracy_b=ev_b.recall,
        only_a=np.flatnonzero(right_a & ~right_b),
        only_b=np.flatnonzero(right_b & ~right_a),
        both_wrong=int(np.count_nonzero(~right_a & ~right_b)),
    )


def comparison_captions(right: Evaluation, wrong: Evaluation, indices: np.ndarray) -> list[str]:
    """Captions "#1234 7, not 1": the true digit and the answer of the run that got it wrong."""
    return [f"#{i} {right.labels[i]}, not {wrong.predictions[i]}" for i in indices]


def attention(model: keras.Model, x28: np.ndarray, class_index: int) -> dict[str, np.ndarray]:
    """What the model attends to for one image: Grad-CAM (when it has a conv layer) and saliency."""
    from core import explain

    x = preprocess_images(np.asarray(x28)[None])[0, ..., 0]
    maps = {}
    try:
        maps["Grad-CAM"] = explain.grad_cam(model, x, class_index)
    except explain.IncompatibleModelError:
        pass
    maps["Saliency"] = explain.saliency(model, x, class_index)
    return maps


def model_problem(model: keras.Model, name: str) -> str | None:
    """Why a model cannot be explored (wrong input or output shape), or None when it can."""
    from core import explain

    try:
        explain.check_model(model, name)
    except explain.IncompatibleModelError as exc:
        return str(exc)
    return None
