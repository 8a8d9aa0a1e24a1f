"""Plotly figures built from plain data (lists, dicts, numpy arrays); no Streamlit inside.

Every function returns a `plotly.graph_objects.Figure` styled for Streamlit's dark theme. The two
clickable figures (`confusion_heatmap`, `embedding_scatter`) carry `customdata` that
`st.plotly_chart(..., on_select="rerun")` reports back; `cell_from_selection` and
`points_from_selection` read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from plotly.subplots import make_subplots

DIGIT_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#7f7f7f",
)
TRAIN_COLOR = "#4F8BF9"
VAL_COLOR = "#FF7F0E"
THIRD_COLOR = "#2ca02c"
HIGHLIGHT = "#4F8BF9"
MUTED = "#5c6370"
EPOCH_AXIS = "epoch (one pass over the training images)"
BATCH_AXIS = "batch (one weight update)"
WAITING = "Waiting for the first batch…"
# Dark at zero so that empty cells melt into the page and mistakes glow.
CONFUSION_SCALE = [[0.0, "#1b1f2a"], [0.35, "#1f4e99"], [1.0, "#9cc3ff"]]
# Transparent at zero: the digit stays visible wherever the map has nothing to say.
HEAT_SCALE = [
    [0.0, "rgba(255,120,0,0)"],
    [0.3, "rgba(255,120,0,0.45)"],
    [1.0, "rgba(255,235,60,0.9)"],
]
SIGNED_SCALE = [
    [0.0, "rgba(59,110,235,0.9)"],
    [0.5, "rgba(255,255,255,0)"],
    [1.0, "rgba(230,40,40,0.9)"],
]
METRIC_TITLES = {
    "loss": ("Loss: how wrong the network is (lower is better)", "cross-entropy loss"),
    "accuracy": ("Accuracy: share of images classified right", "accuracy (%)"),
    "learning_rate": ("Learning rate: the size of each weight update", "learning rate (step size)"),
}


_DARK_TEMPLATE: dict | None = None


def _dark_template() -> dict:
    """plotly_dark as a plain dict, built once: validating it takes 15-25 ms a figure."""
    global _DARK_TEMPLATE
    if _DARK_TEMPLATE is None:
        _DARK_TEMPLATE = go.Layout(template="plotly_dark").to_plotly_json()["template"]
    return _DARK_TEMPLATE


def _merge(base: dict, extra: Mapping[str, Any]) -> dict:
    """base updated by extra, nested dicts merged the way Figure.update_layout merges them."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _layout(fig: go.Figure, height: int = 360, title: str = "", **kwargs: Any) -> go.Figure:
    """Apply the shared dark, transparent, compact style; keyword arguments override it.

    A title sits at the top left with the legend on its own line below it, above the plot.
    The figure is rebuilt around its (already validated) traces and layout without validating
    the shared style again: the live Train charts are rebuilt every second while a job trains,
    and validation was most of their cost (about 50 ms a chart, now about 15).
    """
    style: dict[str, Any] = dict(
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=dict(size=13),
        hoverlabel=dict(font_size=12),
        height=height,
        margin=dict(l=10, r=10, t=80 if title else 50, b=20),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    )
    if title:
        style["title"] = dict(
            text=title,
            x=0,
            xanchor="left",
            xref="paper",
            y=1,
            yref="container",
            yanchor="top",
            pad=dict(t=6),
            font=dict(size=14),
        )
    layout = _merge(_merge(fig.layout.to_plotly_json(), style), kwargs)
    layout["template"] = _dark_template()
    data = [trace.to_plotly_json() for trace in fig.data]
    return go.Figure(data=data, layout=layout, _validate=False)


def _empty(message: str, height: int = 360) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        showarrow=False,
        font=dict(size=16),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


def metric_scale(metric: str) -> float:
    """Accuracy-like metrics are shown in percent."""
    return 100.0 if "accuracy" in metric else 1.0


def ema_smooth(values: ArrayLike, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (weight 0 = none, 0.99 = heavy); NaNs pass."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    if weight == 0.0:
        return out
    last, steps = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        last = last * weight + (1.0 - weight) * v
        steps += 1
        out[i] = last / (1.0 - weight**steps)
    return out


def downsample(
    x: ArrayLike, y: ArrayLike, max_points: int = 2000, tail: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Evenly strided points so a chart stays light; the first and last points are always kept,
    and so are the last `tail` points exactly (the end of a live curve, where the eye is)."""
    x, y = np.asarray(x), np.asarray(y)
    max_points = max(2, int(max_points))
    if len(x) <= max_points:
        return x, y
    tail = min(max(0, int(tail)), max_points // 2)
    head = len(x) - tail
    idx = np.linspace(0, head - 1, max_points - tail).astype(int)
    idx = np.unique(np.concatenate([idx, np.arange(head, len(x)), [len(x) - 1]]))
    return x[idx], y[idx]


LIVE_POINTS, LIVE_TAIL = 400, 50
"""Points per trace while a job trains (the page redraws every second; the browser and the
server's GIL are shared with training), of which the last LIVE_TAIL are every batch."""


def _epoch_positions(history: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Where each epoch record sits on an epoch axis, and which records are partial epochs.

    A stop mid-epoch still ends that epoch in Keras: its record sits at the epochs actually
    trained ("epochs_done", 1.4), not at a full epoch. Records without it sit at their epoch.
    """
    epochs = np.asarray(history.get("epoch", []), dtype=float)
    done = np.asarray(history.get("epochs_done", []), dtype=float)
    if len(done) != len(epochs):
        return epochs, np.zeros(len(epochs), dtype=bool)
    return done, ~np.isclose(done, epochs)


def _epoch_markers(partial: np.ndarray) -> dict:
    """Filled circles for whole epochs, open ones for an epoch cut short."""
    return dict(symbol=["circle-open" if p else "circle" for p in partial], size=8)


def _partial_notes(x: np.ndarray, partial: np.ndarray) -> list[str]:
    """Hover notes: which points are an epoch cut short, and where."""
    return [
        f" (stopped after {v:.2f} epochs)" if p else "" for v, p in zip(x, partial, strict=True)
    ]


def _log_x(fig: go.Figure, log_x: bool, title: str) -> None:
    """The x axis title, from zero on a linear axis or in decades on a log one."""
    if log_x:
        fig.update_xaxes(title=f"{title}, log scale", type="log")
    else:
        fig.update_xaxes(title=title, rangemode="tozero")


def _early_stopping_marks(
    fig: go.Figure,
    x: np.ndarray,
    series: np.ndarray,
    record: Mapping[str, Any] | None,
    scale: float,
    label: str = "",
) -> None:
    """A star on the best epoch (whose weights were kept) and a cross where early stopping fired."""
    if not record:
        return
    k = min(len(x), len(series))
    for key, symbol, text in (
        (
            "best_epoch",
            "star",
            "best epoch {e}" + (", weights kept" if record.get("restored") else ""),
        ),
        ("stopped_epoch", "x", "early stopping fired after epoch {e}"),
    ):
        epoch = int(record.get(key) or 0)
        if not 1 <= epoch <= k:
            continue
        name = text.format(e=epoch)
        fig.add_scatter(
            x=[x[epoch - 1]],
            y=[series[epoch - 1] * scale],
            mode="markers",
            name=f"{label}{name}",
            marker=dict(symbol=symbol, size=14, color="#ffd43b", line=dict(width=1, color="#000")),
            hovertemplate=f"{label}{name}<extra></extra>",
        )


@dataclass(frozen=True)
class Series:
    """One line of a training chart, independent of the library that draws it."""

    name: str
    x: np.ndarray
    y: np.ndarray
    color: str
    width: float = 2.0
    opacity: float = 1.0
    dash: str | None = None
    markers: bool = False
    partial: np.ndarray | None = None  # per point: an epoch cut short (open marker)


def curve_series(
    batch_history: Mapping[str, Sequence[float]],
    epoch_history: Mapping[str, Sequence[float]],
    metric: str = "loss",
    smoothing: float = 0.6,
    batches_per_epoch: int | None = None,
    max_points: int = 2000,
    tail: int = 0,
) -> list[Series]:
    """The lines of one metric's training chart, in drawing order: per batch (raw, faint; then
    smoothed), then per epoch (training mean, validation), y already in the metric's unit."""
    steps = np.asarray(batch_history.get("step", []), dtype=float)
    values = np.asarray(batch_history.get(metric, []), dtype=float)
    n = min(len(steps), len(values))
    epochs, partial = _epoch_positions(epoch_history)
    pct = metric_scale(metric)
    out: list[Series] = []
    if n:
        x = steps[:n] / batches_per_epoch if batches_per_epoch else steps[:n]
        y = values[:n] * pct
        xs, ys = downsample(x, y, max_points, tail)
        out.append(Series("per batch", xs, ys, TRAIN_COLOR, width=1, opacity=0.3))
        xs, ys = downsample(x, ema_smooth(y, smoothing), max_points, tail)
        out.append(Series("per batch, smoothed", xs, ys, TRAIN_COLOR))
    if (batches_per_epoch or n == 0) and len(epochs):
        for key, name, color, dash in (
            (metric, "training, epoch mean", "#9ec1ff", "dot"),
            (f"val_{metric}", "validation", VAL_COLOR, None),
        ):
            series = np.asarray(epoch_history.get(key, []), dtype=float)
            k = min(len(epochs), len(series))
            if k:
                out.append(
                    Series(
                        name,
                        epochs[:k],
                        series[:k] * pct,
                        color,
                        width=2,
                        dash=dash,
                        markers=True,
                        partial=partial[:k],
                    )
                )
    return out


def training_curves(
    batch_history: Mapping[str, Sequence[float]],
    epoch_history: Mapping[str, Sequence[float]],
    metric: str = "loss",
    smoothing: float = 0.6,
    batches_per_epoch: int | None = None,
    log_x: bool = False,
    early_stopping: Mapping[str, Any] | None = None,
    max_points: int = 2000,
    tail: int = 0,
) -> go.Figure:
    """Per-batch (raw faint, smoothed solid) and per-epoch training/validation curves of one metric.

    The x axis is in epochs (a batch sits at step / batches_per_epoch); without batches_per_epoch
    the per-batch curves are drawn against the batch number and the per-epoch ones are left out.
    An epoch cut short by a stop is an open marker at the epochs it trained; early stopping's
    best and firing epochs are marked on the validation curve. Each per-batch trace has at most
    max_points points, the last `tail` of them exact (see downsample).
    """
    lines = curve_series(
        batch_history, epoch_history, metric, smoothing, batches_per_epoch, max_points, tail
    )
    if not lines:
        return _empty(WAITING)
    n = len(batch_history.get("step", []))
    in_epochs = bool(batches_per_epoch) or n == 0
    pct = metric_scale(metric)
    unit = "%" if pct == 100.0 else ""
    where = "epoch %{x:.2f}" if in_epochs else "batch %{x:.0f}"
    hover = f"{where}<br>%{{y:.3f}}{unit}<extra>%{{fullData.name}}</extra>"
    fig = go.Figure()
    for line in lines:
        style = dict(color=line.color, width=line.width, dash=line.dash)
        if not line.markers:
            fig.add_scatter(
                x=line.x,
                y=line.y,
                mode="lines",
                name=line.name,
                line=style,
                opacity=line.opacity,
                hovertemplate=hover,
            )
            continue
        fig.add_scatter(
            x=line.x,
            y=line.y,
            mode="lines+markers",
            name=line.name,
            line=style,
            marker=_epoch_markers(line.partial),
            text=_partial_notes(line.x, line.partial),
            hovertemplate=f"{where}%{{text}}<br>%{{y:.3f}}{unit}<extra>%{{fullData.name}}</extra>",
        )
    marked = [line for line in lines if line.markers]
    if marked:
        epochs = _epoch_positions(epoch_history)[0]
        _early_stopping_marks(fig, epochs, marked[-1].y / pct, early_stopping, pct)
    title, y_title = METRIC_TITLES.get(metric, (metric.replace("_", " "), metric.replace("_", " ")))
    _log_x(fig, log_x, EPOCH_AXIS if in_epochs else BATCH_AXIS)
    fig.update_yaxes(title=y_title, ticksuffix=unit)
    return _layout(fig, title=title)


def lr_series(
    history: Mapping[str, Sequence[float]],
    batches_per_epoch: int | None = None,
    max_points: int = 2000,
    tail: int = 0,
) -> tuple[Series | None, str]:
    """The learning rate along training, from a batch history ("step") or an epoch history
    ("epoch"), as one line (None before the first record) and the x axis's title."""
    lr = np.asarray(history.get("learning_rate", []), dtype=float)
    if "step" in history:
        x = np.asarray(history["step"], dtype=float)
        if batches_per_epoch:
            x, x_title = x / batches_per_epoch, EPOCH_AXIS
        else:
            x_title = BATCH_AXIS
    else:
        x, x_title = _epoch_positions(history)[0], EPOCH_AXIS
    n = min(len(x), len(lr))
    if n == 0:
        return None, x_title
    xs, ys = downsample(x[:n], lr[:n], max_points, tail)
    return Series("learning rate", xs, ys, THIRD_COLOR, markers=n < 50), x_title


def learning_rate_curve(
    history: Mapping[str, Sequence[float]],
    batches_per_epoch: int | None = None,
    log_x: bool = False,
    max_points: int = 2000,
    tail: int = 0,
) -> go.Figure:
    """The learning rate along training, from a batch history ("step") or an epoch history ("epoch")."""
    line, x_title = lr_series(history, batches_per_epoch, max_points, tail)
    if line is None:
        return _empty(WAITING, 220)
    ys = line.y
    fig = go.Figure(
        go.Scatter(
            x=line.x,
            y=ys,
            mode="lines+markers" if line.markers else "lines",
            line=dict(color=line.color),
            hovertemplate="%{x:.2f}: %{y:.2e}<extra></extra>",
        )
    )
    _log_x(fig, log_x, x_title)
    log_y = spans_decades(ys)
    top = float(np.nanmax(ys, initial=0.0))
    fig.update_yaxes(
        title="learning rate (step size)",
        exponentformat="e",
        type="log" if log_y else None,
        # From zero, so that a constant rate is a flat line at its value, not the middle.
        range=None if log_y or top <= 0 else [0, top * 1.15],
    )
    return _layout(fig, 220, showlegend=False, margin=dict(l=10, r=10, t=20, b=20))


def spans_decades(values: np.ndarray) -> bool:
    """Whether the positive values span a factor of ten or more (then a log axis reads better)."""
    positive = values[np.isfinite(values) & (values > 0)]
    return bool(len(positive) and positive.max() / positive.min() >= 10)


def runs_overlay(
    histories: Mapping[str, Mapping[str, Any]],
    metric: str,
    per_batch: bool = False,
    smoothing: float = 0.6,
    log_x: bool = False,
    early_stopping: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> go.Figure:
    """Several runs' curves on one chart, x in epochs: per epoch (training dashed, validation
    solid, early stopping marked), or per batch smoothed from each run's saved "per_batch" record
    (a run saved without one shows its per-epoch training curve instead)."""
    if not histories:
        return _empty("Select runs to compare.")
    pct = metric_scale(metric)
    unit = "%" if pct == 100.0 else ""
    fig = go.Figure()
    for i, (name, h) in enumerate(histories.items()):
        color = DIGIT_COLORS[i % len(DIGIT_COLORS)]
        batches = h.get("per_batch") if per_batch else None
        if isinstance(batches, Mapping) and len(batches.get(metric, [])):
            _overlay_batches(fig, name, batches, metric, smoothing, color, pct, unit)
            continue
        epochs, partial = _epoch_positions(h)
        suffix = " per epoch: no per-batch record" if per_batch else ""
        marked = None
        for key, label, dash in (
            (metric, "training", "dash"),
            (f"val_{metric}", "validation", None),
        ):
            if per_batch and label == "validation":
                continue
            series = np.asarray(h.get(key, []), dtype=float)
            k = min(len(epochs), len(series))
            if not k:
                continue
            marked = series
            fig.add_scatter(
                x=epochs[:k],
                y=series[:k] * pct,
                mode="lines+markers",
                name=f"{name} ({'train' if label == 'training' else label}{suffix})",
                legendgroup=name,
                line=dict(color=color, dash=dash),
                marker=_epoch_markers(partial[:k]),
                text=_partial_notes(epochs[:k], partial[:k]),
                hovertemplate=f"{name}, {label}<br>epoch %{{x:.2f}}%{{text}}: %{{y:.3g}}{unit}"
                "<extra></extra>",
            )
        if marked is not None and not per_batch:
            record = (early_stopping or {}).get(name)
            _early_stopping_marks(fig, epochs, marked, record, pct, label=f"{name}: ")
    if not fig.data:
        kind = "per-batch or per-epoch" if per_batch else "per-epoch"
        return _empty(f"The selected runs have no {kind} {metric.replace('_', ' ')}.")
    y_title = METRIC_TITLES.get(metric, ("", metric.replace("_", " ")))[1]
    _log_x(fig, log_x, EPOCH_AXIS)
    ys = np.concatenate([np.asarray(t.y, dtype=float) for t in fig.data])
    log_y = metric == "learning_rate" and spans_decades(ys)
    top = float(np.nanmax(ys, initial=0.0))
    from_zero = metric == "learning_rate" and not log_y and top > 0
    fig.update_yaxes(
        title=y_title,
        ticksuffix=unit,
        type="log" if log_y else None,
        range=[0, top * 1.15] if from_zero else None,
    )
    return _layout(
        fig,
        380,
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
        margin=dict(l=10, r=10, t=20, b=20),
    )


def _overlay_batches(
    fig: go.Figure,
    name: str,
    batches: Mapping[str, Sequence[float]],
    metric: str,
    smoothing: float,
    color: str,
    pct: float,
    unit: str,
) -> None:
    """One run's saved per-batch curve, smoothed, against epochs (or batches when unknown)."""
    y = np.asarray(batches[metric], dtype=float)
    x = np.asarray(batches.get("epochs_done") or batches.get("step", []), dtype=float)
    k = min(len(x), len(y))
    xs, ys = downsample(x[:k], ema_smooth(y[:k], smoothing) * pct)
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        name=f"{name} (per batch, smoothed)",
        legendgroup=name,
        line=dict(color=color, width=2),
        hovertemplate=f"{name}, per batch<br>epoch %{{x:.2f}}: %{{y:.3g}}{unit}<extra></extra>",
    )


def _is_number(v: Any) -> bool:
    """A real number (not a bool, not None, not NaN)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _parcoords_dimension(name: str, values: list[Any], percent: bool = False) -> dict:
    """One parallel-coordinates axis: numbers as they are (log when they span decades), else categories."""
    label = name.replace("_", " ") + (" (%)" if percent else "")
    present = [v for v in values if v is not None and not (_is_number(v) and math.isnan(v))]
    if present and all(_is_number(v) for v in present):
        arr = np.array([np.nan if v is None else float(v) for v in values]) * (
            100 if percent else 1
        )
        known = arr[np.isfinite(arr)]
        lo, hi = float(known.min()), float(known.max())
        dim: dict[str, Any] = dict(label=label)
        if lo > 0 and hi / lo >= 100:
            # Learning rates span decades: place them on a log axis but label the real values.
            arr = np.log10(arr)
            ticks = np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            dim.update(tickvals=ticks.tolist(), ticktext=[f"{10.0**t:g}" for t in ticks])
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if np.isnan(arr).any():
            # Missing values sit on their own tick below the others instead of vanishing.
            span = (hi - lo) or 1.0
            missing = lo - 0.15 * span
            # Hyperparameters take few values: label those; else four even ticks.
            seen = np.unique(arr[np.isfinite(arr)])
            even = np.linspace(lo, hi, 4) if len(seen) > 6 else seen
            ticks = dim.get("tickvals") or even.tolist()
            arr = np.where(np.isnan(arr), missing, arr)
            texts = dim.get("ticktext") or [f"{t:.3g}" for t in ticks]
            dim.update(tickvals=[missing, *ticks], ticktext=["n/a", *texts], range=[missing, hi])
        dim["values"] = arr.tolist()
        return dim
    categories = sorted({"n/a" if v is None else str(v) for v in values})
    return dict(
        label=label,
        values=[categories.index("n/a" if v is None else str(v)) for v in values],
        tickvals=list(range(len(categories))),
        ticktext=categories,
        range=[-0.5, len(categories) - 0.5],
    )


def parallel_coordinates(
    rows: Sequence[Mapping[str, Any]], dimensions: Sequence[str], color: str = "test_accuracy"
) -> go.Figure:
    """Hyperparameters of many runs against their test accuracy, one line per run."""
    if not rows:
        return _empty("No runs yet.")
    percent = color.endswith("accuracy")
    dims = [_parcoords_dimension(name, [r.get(name) for r in rows]) for name in dimensions]
    color_values = [r.get(color) for r in rows]
    dims.append(_parcoords_dimension(color, color_values, percent))
    shade = np.array(
        [float(v) * (100 if percent else 1) if _is_number(v) else np.nan for v in color_values]
    )
    known = shade[np.isfinite(shade)]
    shade = np.where(np.isfinite(shade), shade, known.min() if len(known) else 0.0)
    fig = go.Figure(
        go.Parcoords(
            line=dict(
                color=shade.tolist(),
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(title=color.replace("_", " ") + (" %" if percent else "")),
            ),
            dimensions=dims,
            labelfont=dict(size=12),
            tickfont=dict(size=11),
        )
    )
    return _layout(fig, 400, margin=dict(l=60, r=40, t=60, b=20))


def confusion_heatmap(
    cm: ArrayLike,
    normalize: bool = False,
    show_diagonal: bool = True,
    labels: Iterable[Any] | None = None,
    zmax: float | None = None,
    title: str = "",
) -> go.Figure:
    """Confusion matrix (rows = true digit from 0 at the top, columns = predicted), clickable per cell.

    Plotly heatmaps report no selection (their trace has no selectPoints), so an invisible scatter
    marker sits on every cell with customdata [true, predicted]: clicking a cell selects it.
    `zmax` fixes the top of the colour scale (two matrices side by side share one).
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square 2-D matrix, got shape {cm.shape}")
    n = cm.shape[0]
    names = [str(v) for v in (range(n) if labels is None else labels)]
    if len(names) != n:
        raise ValueError(f"labels must name the {n} classes of cm, got {len(names)}")
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    z = share * 100 if normalize else cm.astype(float)
    if not show_diagonal:
        z = z.copy()
        np.fill_diagonal(z, np.nan)
    text = [
        [
            "" if np.isnan(z[i, j]) else (f"{z[i, j]:.1f}%" if normalize else f"{int(cm[i, j])}")
            for j in range(n)
        ]
        for i in range(n)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n)),
            y=list(range(n)),
            text=text,
            texttemplate="%{text}",
            hoverinfo="skip",
            colorscale=CONFUSION_SCALE,
            zmin=0,
            zmax=zmax,
            xgap=1,
            ygap=1,
            colorbar=dict(title="% of the row" if normalize else "images", thickness=12),
        )
    )
    true, pred = (a.ravel() for a in np.meshgrid(range(n), range(n), indexing="ij"))
    fig.add_scatter(
        x=pred.tolist(),
        y=true.tolist(),
        mode="markers",
        name="cells",
        showlegend=False,
        # Plain lists, not numpy: Plotly would send a typed array, which Streamlit reports as a dict.
        customdata=[[int(i), int(j)] for i, j in zip(true, pred, strict=True)],
        hovertext=[
            f"true {names[i]}, predicted {names[j]}: {int(cm[i, j])} images "
            f"({share[i, j]:.1%} of the {names[i]}s)"
            for i, j in zip(true, pred, strict=True)
        ],
        hoverinfo="text",
        marker=dict(size=30, symbol="square", color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(255,255,255,0.35)")),
        unselected=dict(marker=dict(opacity=0)),
    )
    # constrain="domain": the square matrix shrinks its plot area instead of padding the axes.
    ticks = dict(
        tickmode="array",
        tickvals=list(range(n)),
        ticktext=names,
        fixedrange=True,
        showgrid=False,
        zeroline=False,
        constrain="domain",
    )
    fig.update_xaxes(
        title="predicted digit (the model's answer)", side="top", range=[-0.5, n - 0.5], **ticks
    )
    fig.update_yaxes(
        title="true digit (the label)", range=[n - 0.5, -0.5], scaleanchor="x", **ticks
    )
    return _layout(
        fig,
        480,
        title=title,
        clickmode="event+select",
        dragmode=False,
        margin=dict(l=10, r=10, t=90 if title else 60, b=10),
    )


def confusion_pair(
    cm_a: ArrayLike,
    cm_b: ArrayLike,
    name_a: str,
    name_b: str,
    normalize: bool = False,
    show_diagonal: bool = False,
) -> tuple[go.Figure, go.Figure]:
    """Two runs' confusion matrices on one colour scale, so the same shade means the same value."""
    shown = []
    for cm in (np.asarray(cm_a), np.asarray(cm_b)):
        totals = cm.sum(axis=1, keepdims=True)
        z = np.divide(cm, totals, out=np.zeros(cm.shape, float), where=totals > 0) * 100
        z = z if normalize else cm.astype(float)
        if not show_diagonal:
            z = z.copy()
            np.fill_diagonal(z, np.nan)
        shown.append(z)
    top = max(float(np.nanmax(z, initial=0.0)) for z in shown) or 1.0
    return tuple(
        confusion_heatmap(cm, normalize, show_diagonal, zmax=top, title=name)
        for cm, name in ((cm_a, name_a), (cm_b, name_b))
    )


def _selection_points(event: Any) -> list[Mapping[str, Any]]:
    """The points of an st.plotly_chart selection event (dict or PlotlyState); [] when none."""
    if event is None:
        return []
    try:
        selection = event["selection"]
    except (KeyError, TypeError, IndexError):
        selection = getattr(event, "selection", None)
    if selection is None:
        return []
    try:
        points = selection["points"]
    except (KeyError, TypeError, IndexError):
        points = getattr(selection, "points", None)
    return [p for p in points or [] if isinstance(p, Mapping)]


def _custom_list(custom: Any) -> list[Any]:
    """A point's customdata as a list: Streamlit turns a typed-array row into {"0": .., "1": ..}."""
    if custom is None:
        return []
    if isinstance(custom, Mapping):
        try:
            return [custom[k] for k in sorted(custom, key=int)]
        except (TypeError, ValueError):
            return []
    if isinstance(custom, (list, tuple, np.ndarray)):
        return list(custom)
    return [custom]


def _as_int(value: Any) -> int | None:
    """An integer-valued number as int, anything else as None."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def cell_from_selection(event: Any) -> tuple[int, int] | None:
    """(true, predicted) of the clicked confusion-matrix cell, from st.plotly_chart's return value."""
    for point in _selection_points(event):
        custom = [_as_int(v) for v in _custom_list(point.get("customdata"))]
        if len(custom) >= 2 and None not in custom[:2]:
            return custom[0], custom[1]
        true, pred = _as_int(point.get("y")), _as_int(point.get("x"))
        if true is not None and pred is not None:
            return true, pred
    return None


def per_class_bars(precision: ArrayLike, recall: ArrayLike, f1: ArrayLike) -> go.Figure:
    """Precision, recall and F1 of each digit as grouped bars."""
    series = [np.asarray(v, dtype=float) * 100 for v in (precision, recall, f1)]
    fig = go.Figure()
    for name, values, color, meaning in (
        ("precision", series[0], TRAIN_COLOR, "of the answers 'd', how many were right"),
        ("recall", series[1], VAL_COLOR, "of the true d's, how many were found"),
        ("F1", series[2], THIRD_COLOR, "harmonic mean of precision and recall"),
    ):
        fig.add_bar(
            x=list(range(len(values))),
            y=values,
            name=name,
            marker_color=color,
            hovertemplate=f"digit %{{x}}: {name} %{{y:.2f}}%<br>({meaning})<extra></extra>",
        )
    low = float(min(np.nanmin(s) for s in series)) if all(len(s) for s in series) else 0.0
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(title="score (%)", range=[max(0.0, low - 2), 100.5], ticksuffix="%")
    return _layout(fig, 320, barmode="group")


def probability_bars(probs: ArrayLike, highlight: int | None = None) -> go.Figure:
    """The ten class probabilities in percent, the predicted (or given) digit highlighted."""
    probs = np.asarray(probs, dtype=float).ravel()
    highlight = int(np.argmax(probs)) if highlight is None else int(highlight)
    colors = [HIGHLIGHT if i == highlight else MUTED for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in range(len(probs))],
            y=probs * 100,
            marker_color=colors,
            text=[f"{p:.0%}" if p >= 0.005 else "" for p in probs],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="digit %{x}: %{y:.2f}%<extra></extra>",
        )
    )
    fig.update_xaxes(title="digit", type="category")
    fig.update_yaxes(title="probability (%)", range=[0, 109], ticksuffix="%")
    return _layout(fig, 300, showlegend=False, margin=dict(l=10, r=10, t=20, b=20))


def image_figure(
    img: ArrayLike,
    title: str = "",
    colorscale: str | list = "gray",
    zmin: float | None = None,
    zmax: float | None = None,
    show_scale: bool = False,
    height: int = 260,
) -> go.Figure:
    """A small image (digit, activation, map) enlarged as a square heatmap without ticks."""
    img = np.asarray(img, dtype=float)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    fig = go.Figure(
        go.Heatmap(
            z=img,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            showscale=show_scale,
            hovertemplate="row %{y}, column %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    top = 40 if title else 10
    return _layout(fig, height, title=title, margin=dict(l=5, r=5, t=top, b=5))


def overlay_figure(
    img28: ArrayLike, heat28: ArrayLike, title: str = "", signed: bool = False
) -> go.Figure:
    """A digit in grey under a heat map that is transparent where it is zero (diverging when signed)."""
    img = np.asarray(img28, dtype=float)
    heat = np.asarray(heat28, dtype=float)
    if heat.ndim == 3 and heat.shape[-1] == 1:
        heat = heat[..., 0]
    top = 255.0 if np.nanmax(img, initial=0.0) > 1.0 else 1.0
    fig = image_figure(img, title, zmin=0, zmax=top)
    limit = float(np.nanmax(np.abs(heat), initial=0.0)) or 1.0
    fig.add_heatmap(
        z=heat,
        colorscale=SIGNED_SCALE if signed else HEAT_SCALE,
        zmin=-limit if signed else 0,
        zmax=limit,
        showscale=True,
        colorbar=dict(thickness=10),
        hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>",
    )
    return fig


def activation_grid(array: ArrayLike, max_channels: int = 16, title: str = "") -> go.Figure:
    """The first channels of a conv layer's output (h, w, channels) as small images."""
    array = np.asarray(array, dtype=float)
    channels = min(max_channels, array.shape[-1])
    cols = min(8, channels)
    rows = math.ceil(channels / cols)
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.02)
    for c in range(channels):
        fig.add_trace(
            go.Heatmap(z=array[..., c], colorscale="Viridis", showscale=False, hoverinfo="skip"),
            row=c // cols + 1,
            col=c % cols + 1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    top = 40 if title else 10
    return _layout(fig, 90 * rows + top, title=title, margin=dict(l=5, r=5, t=top, b=5))


def class_counts(train_counts: ArrayLike, test_counts: ArrayLike) -> go.Figure:
    """How many images of each digit in the training and test sets, side by side."""
    fig = go.Figure()
    for name, counts, color in (
        ("train", train_counts, TRAIN_COLOR),
        ("test", test_counts, VAL_COLOR),
    ):
        counts = np.asarray(counts)
        fig.add_bar(
            x=list(range(len(counts))),
            y=counts,
            name=name,
            marker_color=color,
            hovertemplate=f"{name}: %{{y:,}} images of digit %{{x}}<extra></extra>",
        )
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(title="images")
    return _layout(fig, 320, barmode="group")


def pixel_histogram(counts: ArrayLike, log_y: bool = True) -> go.Figure:
    """How often each pixel value 0-255 occurs; a (256,) array is read as counts, else as pixels."""
    counts = np.asarray(counts)
    if counts.shape != (256,):
        counts = np.bincount(counts.astype(np.uint8).ravel(), minlength=256)
    fig = go.Figure(
        go.Bar(
            x=list(range(256)),
            y=counts,
            marker_color=TRAIN_COLOR,
            hovertemplate="value %{x}: %{y:,} pixels<extra></extra>",
        )
    )
    fig.update_xaxes(title="pixel value (0 = black background, 255 = full ink)")
    fig.update_yaxes(
        title="pixels" + (" (log scale)" if log_y else ""), type="log" if log_y else "linear"
    )
    return _layout(fig, 300, showlegend=False, bargap=0, margin=dict(l=10, r=10, t=20, b=20))


def embedding_scatter(
    coords: ArrayLike, labels: ArrayLike, title: str = "", indices: ArrayLike | None = None
) -> go.Figure:
    """A 2-D map of samples, one colour per digit; customdata holds each sample's index."""
    coords = np.asarray(coords, dtype=float)
    labels = np.asarray(labels)
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    fig = go.Figure()
    for d in range(10):
        mask = labels == d
        fig.add_scattergl(
            x=coords[mask, 0],
            y=coords[mask, 1],
            mode="markers",
            name=str(d),
            marker=dict(size=5, color=DIGIT_COLORS[d], opacity=0.75),
            customdata=indices[mask],
            hovertemplate=f"digit {d}<br>test image #%{{customdata}}<extra></extra>",
        )
    # The map's axes have no units: only who sits near whom matters.
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(
        fig,
        440,
        title=title,
        clickmode="event+select",
        legend=dict(title="digit", itemsizing="constant"),
    )


def points_from_selection(event: Any) -> list[int]:
    """Sample indices (customdata) of the points selected on an embedding_scatter, in order, once each."""
    out: list[int] = []
    for point in _selection_points(event):
        custom = _custom_list(point.get("customdata"))
        index = _as_int(custom[0]) if custom else None
        if index is not None and index not in out:
            out.append(index)
    return out


def per_class_comparison(acc_a: ArrayLike, acc_b: ArrayLike, name_a: str, name_b: str) -> go.Figure:
    """Two runs' per-class accuracy side by side."""
    a, b = (np.asarray(v, dtype=float) * 100 for v in (acc_a, acc_b))
    fig = go.Figure()
    for name, values, color in ((name_a, a, TRAIN_COLOR), (name_b, b, VAL_COLOR)):
        fig.add_bar(
            x=list(range(len(values))),
            y=values,
            name=name,
            marker_color=color,
            hovertemplate=f"{name}<br>digit %{{x}}: %{{y:.2f}}% right<extra></extra>",
        )
    low = float(min(np.nanmin(a), np.nanmin(b))) if len(a) and len(b) else 0.0
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(
        title="accuracy on that digit (%)", range=[max(0.0, low - 2), 100.5], ticksuffix="%"
    )
    return _layout(fig, 320, barmode="group")


# ----- the Draw page's explanations ------------------------------------------------------------


def scaled_overlay(
    img28: ArrayLike,
    heat28: ArrayLike,
    title: str,
    signed: bool,
    limit: float,
    unit: str,
) -> go.Figure:
    """A digit under a heat map on a given colour scale ([0, limit], or [-limit, limit] when
    signed), with a colour bar that says what it measures: maps of two classes on one scale."""
    img = np.asarray(img28, dtype=float)
    heat = np.asarray(heat28, dtype=float)
    limit = float(limit) if limit > 0 else 1.0
    fig = image_figure(img, title, zmin=0, zmax=255.0 if img.max(initial=0) > 1 else 1.0)
    fig.add_heatmap(
        z=heat,
        colorscale=SIGNED_SCALE if signed else HEAT_SCALE,
        zmin=-limit if signed else 0,
        zmax=limit,
        showscale=True,
        colorbar=dict(thickness=10, title=dict(text=unit, side="right")),
        hovertemplate="row %{y}, column %{x}: %{z:.2f}<extra></extra>",
    )
    return fig


def filter_grid(array: ArrayLike, start: int = 0, count: int = 16, title: str = "") -> go.Figure:
    """Filters start to start + count of a conv layer's output (h, w, channels), each named by
    its number and drawn on the layer's own scale, so a quiet filter looks quiet."""
    array = np.asarray(array, dtype=float)
    stop = min(start + count, array.shape[-1])
    shown = list(range(start, stop))
    cols = min(8, len(shown)) or 1
    rows = max(1, math.ceil(len(shown) / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        horizontal_spacing=0.01,
        vertical_spacing=0.06,
        subplot_titles=[f"filter {c + 1}" for c in shown],
    )
    top = float(array.max(initial=0.0)) or 1.0
    for k, c in enumerate(shown):
        fig.add_trace(
            go.Heatmap(
                z=array[..., c],
                colorscale="Viridis",
                zmin=0,
                zmax=top,
                showscale=False,
                hovertemplate=f"filter {c + 1}, row %{{y}}, column %{{x}}: %{{z:.2f}}<extra></extra>",
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_annotations(font_size=10)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    head = 50 if title else 20
    return _layout(fig, 100 * rows + head, title=title, margin=dict(l=5, r=5, t=head, b=5))


def dense_units(values: ArrayLike, title: str = "") -> go.Figure:
    """A dense layer's units for one input as bars, the ten strongest labelled."""
    values = np.asarray(values, dtype=float).ravel()
    strongest = set(np.argsort(-values)[:10].tolist())
    fig = go.Figure(
        go.Bar(
            x=list(range(1, len(values) + 1)),
            y=values,
            marker_color=[HIGHLIGHT if i in strongest else MUTED for i in range(len(values))],
            hovertemplate="unit %{x}: %{y:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(title="unit")
    fig.update_yaxes(title="activation")
    return _layout(fig, 260, title=title, showlegend=False)


def logits_and_softmax(logits: ArrayLike, probs: ArrayLike) -> go.Figure:
    """The output layer's ten scores (logits) beside their softmax, the probabilities."""
    logits = np.asarray(logits, dtype=float).ravel()
    probs = np.asarray(probs, dtype=float).ravel()
    best = int(np.argmax(probs))
    colors = [HIGHLIGHT if i == best else MUTED for i in range(len(probs))]
    digits = [str(i) for i in range(len(probs))]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["score (logit) of each digit", "softmax: exp(score) / sum of exp(scores)"],
        horizontal_spacing=0.12,
    )
    fig.add_bar(
        x=digits,
        y=logits,
        marker_color=colors,
        hovertemplate="digit %{x}: score %{y:.2f}<extra></extra>",
        row=1,
        col=1,
    )
    fig.add_bar(
        x=digits,
        y=probs * 100,
        marker_color=colors,
        text=[f"{p:.0%}" if p >= 0.005 else "" for p in probs],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="digit %{x}: %{y:.2f}%<extra></extra>",
        row=1,
        col=2,
    )
    fig.update_xaxes(title="digit", type="category")
    fig.update_yaxes(title="score", row=1, col=1)
    fig.update_yaxes(title="probability (%)", range=[0, 109], ticksuffix="%", row=1, col=2)
    fig.update_annotations(font_size=12)
    return _layout(fig, 300, showlegend=False, margin=dict(l=10, r=10, t=40, b=20))
