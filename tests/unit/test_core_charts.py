"""core.charts: figures built from plain data, checked against hand computations."""

import numpy as np
import pytest

from core import charts


def test_ema_is_debiased_like_tensorboard():
    values = [1.0, 2.0, 3.0]
    w = 0.5
    # Hand computation: last = 0.5*last + 0.5*v, divided by (1 - 0.5**n).
    expected = [0.5 / 0.5, (0.25 + 1.0) / 0.75, (0.625 + 1.5) / 0.875]
    assert charts.ema_smooth(values, w) == pytest.approx(expected)
    assert charts.ema_smooth(values, 0.0).tolist() == values


def test_downsample_keeps_the_last_point():
    x, y = np.arange(10_001), np.arange(10_001) * 2
    xs, ys = charts.downsample(x, y, 500)
    assert len(xs) <= 500 and xs[-1] == 10_000 and ys[-1] == 20_000


def test_training_curves_in_epochs():
    batch = {"step": [1, 2, 3, 4], "loss": [2.0, 1.0, 0.8, 0.5], "accuracy": [0.1, 0.5, 0.6, 0.8]}
    epoch = {"epoch": [1, 2], "accuracy": [0.3, 0.7], "val_accuracy": [0.4, 0.75]}
    fig = charts.training_curves(batch, epoch, "accuracy", 0.0, batches_per_epoch=2)
    names = [t.name for t in fig.data]
    assert names == ["per batch", "per batch, smoothed", "training, epoch mean", "validation"]
    assert np.allclose(np.asarray(fig.data[0].x, float), [0.5, 1.0, 1.5, 2.0])
    assert np.allclose(np.asarray(fig.data[0].y, float), [10, 50, 60, 80])  # percent
    assert np.allclose(np.asarray(fig.data[3].y, float), [40, 75])
    empty = charts.training_curves({}, {}, "loss")
    assert "Waiting for the first batch" in empty.layout.annotations[0].text


def test_confusion_heatmap_counts_normalised_and_diagonal():
    cm = np.array([[8, 2], [1, 9]])
    counts = charts.confusion_heatmap(cm)
    assert np.array_equal(np.asarray(counts.data[0].z, float), cm)
    norm = charts.confusion_heatmap(cm, normalize=True)
    assert np.allclose(np.asarray(norm.data[0].z, float)[0], [80.0, 20.0])
    hidden = charts.confusion_heatmap(cm, show_diagonal=False)
    z = np.asarray(hidden.data[0].z, float)
    assert np.isnan(z[0, 0]) and np.isnan(z[1, 1]) and z[0, 1] == 2
    overlay = counts.data[1]
    assert [list(c) for c in np.asarray(overlay.customdata)] == [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_cell_from_selection_events():
    assert charts.cell_from_selection({"selection": {"points": []}}) is None
    assert charts.cell_from_selection(None) is None
    overlay = {"selection": {"points": [{"x": 9, "y": 4, "customdata": [4, 9], "curve_number": 1}]}}
    assert charts.cell_from_selection(overlay) == (4, 9)
    # What Streamlit really sends for a customdata list.
    sent = {"selection": {"points": [{"x": 9, "y": 4, "customdata": {"0": 4, "1": 9}}]}}
    assert charts.cell_from_selection(sent) == (4, 9)
    heatmap = {"selection": {"points": [{"x": 2, "y": 7, "curve_number": 0}]}}
    assert charts.cell_from_selection(heatmap) == (7, 2)


def test_embedding_scatter_carries_indices():
    coords = np.array([[0, 0], [1, 1], [2, 2]], float)
    fig = charts.embedding_scatter(
        coords, np.array([3, 3, 5]), "map", indices=np.array([10, 20, 30])
    )
    three = next(t for t in fig.data if t.name == "3")
    assert np.asarray(three.customdata).tolist() == [10, 20]
    event = {"selection": {"points": [{"customdata": 30}, {"customdata": [10]}]}}
    assert charts.points_from_selection(event) == [30, 10]


def test_probability_bars_highlight_the_answer():
    probs = np.full(10, 0.02)
    probs[6] = 0.82
    colors = list(charts.probability_bars(probs).data[0].marker.color)
    assert colors[6] != colors[0] and len(set(colors)) == 2


def test_parallel_coordinates_with_categories():
    rows = [
        {"optimizer": "adam", "batch_size": 32, "test_accuracy": 0.99},
        {"optimizer": "sgd", "batch_size": 128, "test_accuracy": 0.97},
    ]
    fig = charts.parallel_coordinates(rows, ["optimizer", "batch_size"])
    dims = fig.data[0].dimensions
    assert list(dims[0].ticktext) == ["adam", "sgd"] and list(dims[0].values) == [0, 1]
    assert list(dims[2].values) == pytest.approx([99.0, 97.0])
