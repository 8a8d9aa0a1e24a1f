"""The light SVG charts of the live Train view: ticks, layout, lines, and the same lines as the
interactive charts."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from core import charts, live_chart
from core.charts import Series

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def history(n: int, per_epoch: int = 10) -> tuple[dict, dict]:
    steps = list(range(1, n + 1))
    loss = list(np.linspace(2.3, 0.1, n))
    batch = {"step": steps, "loss": loss, "accuracy": [1 - v / 2.4 for v in loss]}
    batch["learning_rate"] = list(np.geomspace(1e-2, 1e-5, n))
    epochs = n // per_epoch
    epoch = {
        "epoch": list(range(1, epochs + 1)),
        "loss": [0.5] * epochs,
        "val_loss": [0.4] * epochs,
        "accuracy": [0.9] * epochs,
        "val_accuracy": [0.95] * epochs,
    }
    return batch, epoch


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [(0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0, 2.3, [0, 0.5, 1, 1.5, 2]), (0, 1.2, None)],
)
def test_nice_ticks_are_round_and_inside(lo, hi, expected):
    ticks = live_chart.nice_ticks(lo, hi)
    if expected is not None:
        assert ticks == pytest.approx(expected)
    assert all(lo <= t <= hi for t in ticks) and 3 <= len(ticks) <= 8
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])


def test_log_ticks_are_decades_or_1_2_5():
    assert live_chart.log_ticks(1e-5, 1e-2) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
    assert live_chart.log_ticks(0.003, 0.04) == pytest.approx([0.005, 0.01, 0.02])
    assert live_chart.log_ticks(0, 1) == []


def test_tick_labels_keep_the_decimals_the_step_needs():
    assert [live_chart.tick_label(v, 0.25) for v in (0, 0.25, 0.75)] == ["0.00", "0.25", "0.75"]
    assert live_chart.tick_label(50, 25, "%") == "50%"
    assert live_chart.tick_label(0.0005, 0.0005, scientific=True) == "5e-4"


def test_a_chart_draws_each_line_with_its_style_and_splits_at_gaps():
    lines = [
        Series("raw", np.array([0.0, 1, 2, 3]), np.array([1.0, np.nan, 3, 4]), "#111", 1, 0.3),
        Series(
            "epochs",
            np.array([1.0, 2.0]),
            np.array([2.0, 2.5]),
            "#222",
            markers=True,
            partial=np.array([False, True]),
        ),
    ]
    root = parse(live_chart.svg_chart(lines, title="T <&>", x_title="x", y_title="y", uid="u"))
    polylines = root.iter(f"{SVG}polyline")
    by_colour = {}
    for p in polylines:
        by_colour.setdefault(p.get("stroke"), []).append(p)
    assert len(by_colour["#111"]) == 2  # the NaN splits the raw line in two
    assert by_colour["#111"][0].get("stroke-opacity") == "0.3"
    circles = list(root.iter(f"{SVG}circle"))
    assert [c.get("fill") for c in circles] == ["#222", "none"]  # the cut-short epoch is open
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "T <&>" in texts and "raw" in texts and "epochs" in texts  # escaped, then parsed back
    assert root.find(f"{SVG}clipPath").get("id") == "u-plot"


def test_an_empty_chart_says_it_waits():
    root = parse(live_chart.live_curves({}, {}, "loss", 0.6, 10))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert charts.WAITING in texts and root.get("data-batches") == "0"


def test_live_curves_draw_the_lines_of_the_interactive_chart():
    batch, epoch = history(1000)
    svg = live_chart.live_curves(batch, epoch, "accuracy", 0.6, 10)
    root = parse(svg)
    assert root.get("data-batches") == "1000"
    names = {t.text for t in root.iter(f"{SVG}text")}
    expected = charts.curve_series(batch, epoch, "accuracy", 0.6, 10)
    assert {s.name for s in expected} <= names
    assert "100%" in names or any(n and n.endswith("%") for n in names)  # a percent axis
    raw = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke-opacity") == "0.3"]
    # Downsampled as the live Plotly traces are: LIVE_POINTS points at most.
    assert len(raw[0].get("points").split()) <= charts.LIVE_POINTS + 1


def test_log_x_and_a_learning_rate_spanning_decades_use_log_axes():
    batch, _ = history(200)
    svg = live_chart.live_learning_rate(batch, 10, log_x=True)
    texts = [t.text for t in parse(svg).iter(f"{SVG}text")]
    assert any("log scale" in (t or "") for t in texts)
    assert "1e-3" in texts and "1e-4" in texts  # decades on y: 1e-2 .. 1e-5
    flat = live_chart.live_learning_rate({"step": [1, 2, 3], "learning_rate": [0.01] * 3}, 10)
    labels = [t.text for t in parse(flat).iter(f"{SVG}text")]
    numbers = {float(x) for x in labels if re.fullmatch(r"[\d.]+(e-?\d+)?", x or "")}
    assert 0.0 in numbers  # a constant rate is drawn from zero, not as the middle of the axis


def test_a_diverged_curve_says_so_instead_of_waiting():
    batch = {"step": [1, 2, 3], "loss": [float("nan")] * 3, "accuracy": [float("nan")] * 3}
    root = parse(live_chart.live_curves(batch, {}, "loss", 0.6, 10))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert live_chart.NOT_FINITE in texts and charts.WAITING not in texts
