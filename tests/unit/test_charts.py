"""core.charts: figures checked against hand computations, selections against Streamlit's own serde."""

import json
import subprocess
import sys

import numpy as np
import plotly.io as pio
import pytest
from streamlit.elements.plotly_chart import PlotlyChartSelectionSerde

from core import charts


def streamlit_event(*points: dict):
    """What st.plotly_chart(on_select="rerun") returns, built by Streamlit's own deserialiser."""
    ui_value = {"selection": {"points": list(points), "point_indices": [], "box": [], "lasso": []}}
    return PlotlyChartSelectionSerde().deserialize(json.dumps(ui_value))


def test_charts_imports_neither_streamlit_nor_tensorflow():
    code = (
        "import sys, core.charts; "
        "print([m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ema_passes_nans_and_keeps_debiasing_across_them():
    w = 0.6
    # By hand: last = 0.6*last + 0.4*v; smoothed = last / (1 - 0.6**k), k = finite values so far.
    last1 = 0.4 * 1.0
    last2 = 0.6 * last1 + 0.4 * 3.0
    last3 = 0.6 * last2 + 0.4 * 2.0
    expected = [last1 / 0.4, last2 / (1 - 0.6**2), np.nan, last3 / (1 - 0.6**3)]
    got = charts.ema_smooth([1.0, 3.0, np.nan, 2.0], w)
    assert got == pytest.approx(expected, nan_ok=True)
    assert got[0] == 1.0  # debiased: the first value is not pulled towards zero
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        charts.ema_smooth([1.0], 1.0)
    # Weight 0.5 by hand, as TensorBoard does it; weight 0 leaves the values as they are.
    hand = [0.5 / 0.5, (0.25 + 1.0) / 0.75, (0.625 + 1.5) / 0.875]
    assert charts.ema_smooth([1.0, 2.0, 3.0], 0.5) == pytest.approx(hand)
    assert charts.ema_smooth([1.0, 2.0, 3.0], 0.0).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "n, max_points", [(5, 10), (2001, 2000), (9_999, 7), (100, 2), (10_001, 500)]
)
def test_downsample_is_bounded_and_keeps_both_ends(n, max_points):
    x = np.arange(n) * 0.5
    y = x**2
    xs, ys = charts.downsample(x, y, max_points)
    assert len(xs) == len(ys) <= max(max_points, 2)
    assert (xs[0], xs[-1], ys[-1]) == (0.0, x[-1], y[-1])
    assert np.all(np.diff(xs) > 0)
    assert np.array_equal(ys, xs**2)  # pairs stay pairs


@pytest.mark.parametrize(
    "n, max_points, tail", [(10_000, 400, 50), (401, 400, 50), (5_000, 10, 50)]
)
def test_downsample_keeps_the_last_points_exact(n, max_points, tail):
    x = np.arange(n, dtype=float)
    xs, ys = charts.downsample(x, -x, max_points, tail)
    assert len(xs) <= max_points and xs[0] == 0.0 and np.all(np.diff(xs) > 0)
    kept = min(tail, max_points // 2)
    assert np.array_equal(xs[-kept:], x[-kept:]) and np.array_equal(ys, -xs)


def test_live_curves_are_lighter_but_end_exactly():
    steps = np.arange(1, 20_001)
    batches = {"step": steps, "loss": 1.0 / steps, "learning_rate": np.full(20_000, 1e-3)}
    full = charts.training_curves(batches, {}, "loss", 0.0, 1000)
    live = charts.training_curves(
        batches, {}, "loss", 0.0, 1000, max_points=charts.LIVE_POINTS, tail=charts.LIVE_TAIL
    )
    assert len(full.data[0].x) == 2000 and len(live.data[0].x) <= charts.LIVE_POINTS
    assert np.allclose(live.data[0].x[-charts.LIVE_TAIL :], steps[-charts.LIVE_TAIL :] / 1000)
    lr = charts.learning_rate_curve(batches, 1000, max_points=charts.LIVE_POINTS)
    assert len(lr.data[0].x) <= charts.LIVE_POINTS


def test_training_curves_smooth_per_batch_in_epochs():
    batch = {"step": [1, 2, 3, 4, 5], "loss": [2.0, 1.0, 1.5, 0.5, 0.7]}
    epoch = {"epoch": [1, 2], "loss": [1.5, 0.9], "val_loss": [1.2, 0.8]}
    fig = charts.training_curves(batch, epoch, "loss", smoothing=0.5, batches_per_epoch=4)
    raw, smooth, train, val = fig.data
    assert np.allclose(np.asarray(raw.x, float), [0.25, 0.5, 0.75, 1.0, 1.25])
    # Hand EMA with weight 0.5: lasts 1.0, 1.0, 1.25, 0.875, 0.7875 over 1 - 0.5**k.
    hand = [1.0 / 0.5, 1.0 / 0.75, 1.25 / 0.875, 0.875 / 0.9375, 0.7875 / 0.96875]
    assert np.allclose(np.asarray(smooth.y, float), hand)
    assert raw.opacity < 1 and smooth.line.width > raw.line.width
    assert train.mode == val.mode == "lines+markers"
    assert np.allclose(np.asarray(val.x, float), [1, 2])
    assert "epoch" in fig.layout.xaxis.title.text


def test_training_curves_name_every_trace_and_show_validation_in_percent():
    batch = {"step": [1, 2, 3, 4], "loss": [2.0, 1.0, 0.8, 0.5], "accuracy": [0.1, 0.5, 0.6, 0.8]}
    epoch = {"epoch": [1, 2], "accuracy": [0.3, 0.7], "val_accuracy": [0.4, 0.75]}
    fig = charts.training_curves(batch, epoch, "accuracy", 0.0, batches_per_epoch=2)
    names = [t.name for t in fig.data]
    assert names == ["per batch", "per batch, smoothed", "training, epoch mean", "validation"]
    assert np.allclose(np.asarray(fig.data[0].x, float), [0.5, 1.0, 1.5, 2.0])
    assert np.allclose(np.asarray(fig.data[0].y, float), [10, 50, 60, 80])
    assert np.allclose(np.asarray(fig.data[3].y, float), [40, 75])


def test_training_curves_without_val_or_batches_per_epoch():
    batch = {"step": [1, 2, 3], "accuracy": [0.5, 0.6, 0.7]}
    fig = charts.training_curves(batch, {"epoch": [1], "accuracy": [0.6]}, "accuracy")
    # Unknown epoch length: per-batch curves against the batch number, epochs left out.
    assert [t.name for t in fig.data] == ["per batch", "per batch, smoothed"]
    assert np.allclose(np.asarray(fig.data[0].x, float), [1, 2, 3])
    assert np.allclose(np.asarray(fig.data[0].y, float), [50, 60, 70])
    assert fig.layout.yaxis.ticksuffix == "%"
    # A saved run with only per-epoch values still draws them (no "waiting" message).
    saved = charts.training_curves({}, {"epoch": [1, 2], "loss": [0.3, 0.2]}, "loss")
    assert [t.name for t in saved.data] == ["training, epoch mean"]
    assert not saved.layout.annotations


def test_training_curves_empty_state_is_a_message():
    for batch, epoch in (({}, {}), ({"step": [], "loss": []}, {"epoch": []})):
        fig = charts.training_curves(batch, epoch, "loss")
        assert not fig.data
        assert fig.layout.annotations[0].text == "Waiting for the first batch…"


def test_learning_rate_curve_from_batches_or_epochs():
    batch = {"step": [10, 20], "learning_rate": [1e-3, 1e-4]}
    fig = charts.learning_rate_curve(batch, batches_per_epoch=10)
    assert np.allclose(np.asarray(fig.data[0].x, float), [1, 2])
    assert fig.layout.yaxis.type == "log"  # one decade or more
    epochs = charts.learning_rate_curve({"epoch": [1, 2, 3], "learning_rate": [0.01] * 3})
    assert np.allclose(np.asarray(epochs.data[0].x, float), [1, 2, 3])


def test_runs_overlay_dashes_training_and_groups_by_run():
    histories = {
        "a": {"epoch": [1, 2], "accuracy": [0.9, 0.95], "val_accuracy": [0.92, 0.96]},
        "b": {"epoch": [1], "accuracy": [0.8]},
    }
    fig = charts.runs_overlay(histories, "accuracy")
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"a (train)", "a (validation)", "b (train)"}
    assert by_name["a (train)"].line.dash == "dash" and by_name["a (validation)"].line.dash is None
    assert by_name["a (train)"].line.color == by_name["a (validation)"].line.color
    assert np.allclose(np.asarray(by_name["a (validation)"].y, float), [92, 96])


def test_parallel_coordinates_categories_log_scale_and_missing_values():
    rows = [
        {"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 32, "test_accuracy": 0.97},
        {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "test_accuracy": None},
        {"optimizer": "adam", "learning_rate": 0.0001, "batch_size": None, "test_accuracy": 0.99},
    ]
    fig = charts.parallel_coordinates(rows, ["optimizer", "learning_rate", "batch_size"])
    opt, lr, bs, acc = fig.data[0].dimensions
    assert list(opt.ticktext) == ["adam", "sgd"] and list(opt.values) == [1, 0, 0]
    # Three decades of learning rate: log10 positions, real values on the ticks.
    assert np.allclose(lr.values, [-1, -3, -4]) and "0.001" in lr.ticktext
    # A missing value gets its own "n/a" tick below the known ones.
    assert list(bs.ticktext) == ["n/a", "32", "64"] and bs.values[2] == bs.tickvals[0] < 32
    assert acc.ticktext[0] == "n/a" and acc.values[0] == pytest.approx(97.0)
    assert np.isfinite(np.asarray(fig.data[0].line.color, float)).all()
    single = charts.parallel_coordinates([rows[0]], ["optimizer", "batch_size"])
    assert [list(d.values) for d in single.data[0].dimensions] == [[0], [32.0], [97.0]]


def test_confusion_heatmap_values_match_hand_counts():
    cm = np.array([[50, 0, 0], [3, 40, 7], [0, 0, 0]])
    counts = charts.confusion_heatmap(cm, labels=["zero", "one", "two"])
    heat, cells = counts.data
    assert np.array_equal(np.asarray(heat.z, float), cm)
    assert heat.text[1][2] == "7"
    norm = charts.confusion_heatmap(cm, normalize=True)
    z = np.asarray(norm.data[0].z, float)
    assert np.allclose(z[1], [3 / 50 * 100, 40 / 50 * 100, 7 / 50 * 100])
    assert np.allclose(z[2], 0)  # an empty row is zeros, not a division by zero
    assert norm.data[0].text[1][2] == "14.0%"
    hidden = np.asarray(charts.confusion_heatmap(cm, show_diagonal=False).data[0].z, float)
    assert np.isnan(np.diag(hidden)).all() and hidden[1, 2] == 7
    # True 0 at the top, predicted along the x axis, labels on the ticks.
    assert list(counts.layout.yaxis.range) == [2.5, -0.5]
    assert list(counts.layout.xaxis.ticktext) == ["zero", "one", "two"]
    k = 1 * 3 + 2  # the overlay lists cells row by row
    assert (cells.x[k], cells.y[k]) == (2, 1)
    assert cells.hovertext[k] == "true one, predicted two: 7 images (14.0% of the ones)"


def test_confusion_overlay_is_what_a_click_selects():
    fig = charts.confusion_heatmap(np.arange(100).reshape(10, 10))
    heat, cells = fig.data
    # Heatmaps have no selectPoints in plotly.js: the scatter must take hover and clicks.
    assert heat.type == "heatmap" and heat.hoverinfo == "skip"
    assert cells.type == "scatter" and cells.mode == "markers" and len(cells.x) == 100
    assert fig.layout.clickmode == "event+select"
    sent = json.loads(pio.to_json(fig))["data"][1]["customdata"]
    assert sent[49] == [4, 9]  # a plain JSON list, not a typed array ({"dtype":..., "bdata":...})


def test_cell_from_selection_reads_streamlit_events():
    overlay = {"curve_number": 1, "point_number": 49, "point_index": 49, "x": 9, "y": 4}
    assert charts.cell_from_selection(streamlit_event({**overlay, "customdata": [4, 9]})) == (4, 9)
    # A typed-array customdata row arrives as an object with "0", "1" keys.
    typed = {"curve_number": 1, "customdata": {"0": 4, "1": 9}}
    assert charts.cell_from_selection(streamlit_event(typed)) == (4, 9)
    heatmap_point = {"curve_number": 0, "x": 2, "y": 7, "z": 5}
    assert charts.cell_from_selection(streamlit_event(heatmap_point)) == (7, 2)
    assert charts.cell_from_selection(streamlit_event()) is None
    assert charts.cell_from_selection(streamlit_event({"x": 0.3, "y": 2})) is None
    assert charts.cell_from_selection(None) is None
    # A plain dict without curve_number, customdata as Streamlit sends a list.
    plain = {"x": 9, "y": 4, "customdata": {"0": 4, "1": 9}}
    assert charts.cell_from_selection({"selection": {"points": [plain]}}) == (4, 9)
    assert charts.cell_from_selection({"selection": {"points": [overlay | {"x": 9.0}]}}) == (4, 9)


def test_embedding_scatter_customdata_and_selection():
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], float)
    labels = np.array([7, 2, 7, 2])
    fig = charts.embedding_scatter(coords, labels, "pixels", indices=np.array([40, 41, 42, 43]))
    custom = {t.name: np.asarray(t.customdata).tolist() for t in fig.data if len(t.x)}
    assert custom == {"2": [41, 43], "7": [40, 42]}
    colors = {t.name: t.marker.color for t in fig.data}
    assert len(set(colors.values())) == 10
    event = streamlit_event(
        {"curve_number": 7, "point_index": 1, "customdata": 42},
        {"curve_number": 2, "point_index": 0, "customdata": [41]},
        {"curve_number": 7, "point_index": 1, "customdata": 42},
    )
    assert charts.points_from_selection(event) == [42, 41]
    assert charts.points_from_selection(streamlit_event()) == []


def test_probability_bars_highlight_and_labels():
    probs = np.array([0.01, 0.0, 0.6, 0.3, 0.09, 0, 0, 0, 0, 0])
    bars = charts.probability_bars(probs).data[0]
    colors = list(bars.marker.color)
    assert colors[2] != colors[3] and colors.count(colors[2]) == 1 and len(set(colors)) == 2
    assert np.allclose(np.asarray(bars.y, float), probs * 100)
    assert bars.text[2] == "60%" and bars.text[1] == ""
    chosen = list(charts.probability_bars(probs, highlight=3).data[0].marker.color)
    assert chosen[3] == colors[2] and chosen[2] == colors[3]


def test_image_and_overlay_figures():
    img = np.zeros((28, 28, 1))
    img[5, 9] = 1.0
    fig = charts.image_figure(img, "a digit")
    assert np.asarray(fig.data[0].z).shape == (28, 28)
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"
    heat = np.zeros((28, 28))
    heat[3, 3], heat[4, 4] = -0.5, 0.25
    signed = charts.overlay_figure(img[..., 0], heat, "occlusion", signed=True).data[1]
    assert (signed.zmin, signed.zmax) == (-0.5, 0.5)
    assert "0)" in signed.colorscale[1][1]  # the middle (zero) colour is fully transparent
    unsigned = charts.overlay_figure(img[..., 0] * 255, np.abs(heat), "saliency").data
    assert unsigned[0].zmax == 255 and unsigned[1].zmin == 0


def test_counts_histogram_and_comparisons():
    fig = charts.class_counts(range(10), [5] * 10)
    assert [t.name for t in fig.data] == ["train", "test"]
    pixels = np.array([[0, 0, 255], [3, 0, 255]], np.uint8)
    hist = charts.pixel_histogram(pixels, log_y=False).data[0]
    y = np.asarray(hist.y)
    assert (len(y), y[0], y[3], y[255], y.sum()) == (256, 3, 1, 2, 6)
    bars = charts.per_class_bars([0.9] * 10, [0.8] * 10, [0.85] * 10).data
    assert [t.name for t in bars] == ["precision", "recall", "F1"]
    assert np.allclose(np.asarray(bars[1].y, float), 80)
    comp = charts.per_class_comparison([0.99] * 10, [0.95] * 10, "big", "small")
    assert [t.name for t in comp.data] == ["big", "small"]
    assert np.allclose(np.asarray(comp.data[1].y, float), 95)


def test_a_stopped_epoch_sits_at_the_epochs_it_trained_and_looks_partial():
    batch = {"step": [1, 2, 3, 4, 5, 6], "loss": [2.0, 1.5, 1.0, 0.9, 0.8, 0.7]}
    # Stopped two batches into epoch 2 of 4 batches: Keras still logs "epoch 2".
    epoch = {"epoch": [1, 2], "epochs_done": [1.0, 1.5], "loss": [1.2, 0.8], "val_loss": [1.1, 0.9]}
    fig = charts.training_curves(batch, epoch, "loss", 0.0, batches_per_epoch=4)
    by_name = {t.name: t for t in fig.data}
    val = by_name["validation"]
    assert np.allclose(np.asarray(val.x, float), [1.0, 1.5])
    assert list(val.marker.symbol) == ["circle", "circle-open"]
    assert val.text[0] == "" and "1.50 epochs" in val.text[1]
    # Old runs without "epochs_done" keep their points on whole epochs, all filled.
    old = charts.training_curves({}, {"epoch": [1, 2], "loss": [0.3, 0.2]}, "loss")
    assert np.allclose(np.asarray(old.data[0].x, float), [1, 2])
    assert list(old.data[0].marker.symbol) == ["circle", "circle"]


def test_early_stopping_marks_the_best_and_the_firing_epoch_on_validation():
    epoch = {"epoch": [1, 2, 3, 4, 5], "loss": [0.9, 0.5, 0.4, 0.3, 0.2]}
    epoch["val_loss"] = [1.0, 0.5, 0.6, 0.7, 0.8]
    record = {"best_epoch": 2, "stopped_epoch": 5, "restored": True}
    fig = charts.training_curves({}, epoch, "loss", early_stopping=record)
    by_name = {t.name: t for t in fig.data}
    best = by_name["best epoch 2, weights kept"]
    fired = by_name["early stopping fired after epoch 5"]
    assert (list(best.x), list(best.y)) == ([2.0], [0.5])  # the validation value of epoch 2
    assert (list(fired.x), list(fired.y)) == ([5.0], [0.8])
    assert best.marker.symbol == "star" and fired.marker.symbol == "x"
    # Not fired (0) and not restored: only the best epoch, without "weights kept".
    quiet = charts.training_curves(
        {}, epoch, "loss", early_stopping={"best_epoch": 2, "stopped_epoch": 0}
    )
    assert [t.name for t in quiet.data][-1] == "best epoch 2"


def test_log_scale_x_on_every_training_curve():
    batch = {"step": [1, 2, 3, 4], "loss": [2.0, 1.0, 0.8, 0.5], "learning_rate": [0.1] * 4}
    epoch = {"epoch": [1, 2], "loss": [1.5, 0.6]}
    linear = charts.training_curves(batch, epoch, "loss", batches_per_epoch=2)
    assert linear.layout.xaxis.type is None and linear.layout.xaxis.rangemode == "tozero"
    log = charts.training_curves(batch, epoch, "loss", batches_per_epoch=2, log_x=True)
    assert log.layout.xaxis.type == "log" and log.layout.xaxis.rangemode is None
    assert "log scale" in log.layout.xaxis.title.text
    assert charts.learning_rate_curve(batch, 2, log_x=True).layout.xaxis.type == "log"
    overlay = charts.runs_overlay({"a": epoch}, "loss", log_x=True)
    assert overlay.layout.xaxis.type == "log"


def test_learning_rate_per_epoch_uses_the_partial_epoch_position():
    history = {"epoch": [1, 2], "epochs_done": [1.0, 1.25], "learning_rate": [0.01, 0.001]}
    fig = charts.learning_rate_curve(history)
    assert np.allclose(np.asarray(fig.data[0].x, float), [1.0, 1.25])


def test_runs_overlay_per_batch_is_smoothed_and_old_runs_fall_back_to_epochs():
    new = {
        "epoch": [1],
        "loss": [1.0],
        "per_batch": {"step": [1, 2, 3], "epochs_done": [0.5, 1.0, 1.5], "loss": [1.0, 2.0, 3.0]},
    }
    old = {"epoch": [1, 2], "loss": [0.9, 0.7], "val_loss": [0.8, 0.75]}
    fig = charts.runs_overlay({"new": new, "old": old}, "loss", per_batch=True, smoothing=0.5)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {
        "new (per batch, smoothed)",
        "old (train per epoch: no per-batch record)",
    }
    smooth = by_name["new (per batch, smoothed)"]
    assert np.allclose(np.asarray(smooth.x, float), [0.5, 1.0, 1.5])
    # TensorBoard's EMA with weight 0.5, by hand (as in test_ema_passes_nans...).
    hand = [0.5 / 0.5, (0.25 + 1.0) / 0.75, (0.625 + 1.5) / 0.875]
    assert np.allclose(np.asarray(smooth.y, float), hand)
    assert np.allclose(
        np.asarray(by_name["old (train per epoch: no per-batch record)"].y, float), [0.9, 0.7]
    )
    # Per epoch, the same runs are dashed training and solid validation lines.
    per_epoch = {t.name for t in charts.runs_overlay({"new": new, "old": old}, "loss").data}
    assert per_epoch == {"new (train)", "old (train)", "old (validation)"}


def test_runs_overlay_learning_rate_and_early_stopping_marks():
    a = {"epoch": [1, 2, 3], "learning_rate": [0.1, 0.01, 0.001], "val_loss": [0.5, 0.4, 0.6]}
    a["loss"] = [0.7, 0.5, 0.4]
    lr = charts.runs_overlay({"a": a}, "learning_rate")
    assert [t.name for t in lr.data] == ["a (train)"]
    assert lr.layout.yaxis.type == "log"  # three decades
    marks = charts.runs_overlay(
        {"a": a}, "loss", early_stopping={"a": {"best_epoch": 2, "stopped_epoch": 3}}
    )
    names = [t.name for t in marks.data]
    assert "a: best epoch 2" in names and "a: early stopping fired after epoch 3" in names
    star = marks.data[names.index("a: best epoch 2")]
    assert (list(star.x), list(star.y)) == ([2.0], [0.4])


def test_confusion_pair_shares_one_colour_scale():
    a = np.array([[8, 2], [1, 9]])
    b = np.array([[5, 5], [0, 10]])
    left, right = charts.confusion_pair(a, b, "small", "big")
    # Diagonal hidden by default: the largest mistake of either run tops both scales (b's 5).
    assert left.data[0].zmax == right.data[0].zmax == 5
    assert np.isnan(np.asarray(left.data[0].z, float)[0, 0])
    assert (left.layout.title.text, right.layout.title.text) == ("small", "big")
    rows = charts.confusion_pair(a, b, "small", "big", normalize=True, show_diagonal=True)
    assert rows[0].data[0].zmax == rows[1].data[0].zmax == 100.0  # b's row 1: 10 of 10
    assert np.allclose(np.asarray(rows[0].data[0].z, float), [[80, 20], [10, 90]])


def test_a_constant_learning_rate_is_a_flat_line_at_its_value_from_zero():
    batch = {"step": [1, 2, 3], "learning_rate": [0.01] * 3}
    fig = charts.learning_rate_curve(batch, 3)
    assert list(fig.layout.yaxis.range) == pytest.approx([0, 0.0115])
    overlay = charts.runs_overlay(
        {"a": {"epoch": [1, 2], "learning_rate": [0.01, 0.005]}}, "learning_rate"
    )
    assert list(overlay.layout.yaxis.range) == pytest.approx([0, 0.0115])
    assert (
        charts.learning_rate_curve(
            {"step": [1, 2], "learning_rate": [1.0, 0.01]}
        ).layout.yaxis.range
        is None
    )
