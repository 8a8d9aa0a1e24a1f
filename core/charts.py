"""Plotly figures built from plain data (lists, dicts, numpy arrays); no Streamlit inside."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
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
HIGHLIGHT = "#4F8BF9"
MUTED = "#5c6370"


def _layout(fig: go.Figure, height: int = 360, **kwargs) -> go.Figure:
    fig.update_layout(
        template="plotly_dark",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        height=height,
        margin=dict(l=10, r=10, t=40, b=20),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
    )
    fig.update_layout(**kwargs)
    return fig


def ema_smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (weight 0 = no smoothing)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    last, steps = 0.0, 0
    for i, v in enumerate(values):
        if not np.isfinite(v):
            out[i] = v
            continue
        last = last * weight + (1 - weight) * v
        steps += 1
        out[i] = last / (1 - weight**steps) if weight > 0 else v
    return out


def downsample(x: Sequence[float], y: Sequence[float], max_points: int = 2000):
    """Every k-th point so a chart stays light; the last point is always kept."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) <= max_points:
        return x, y
    idx = np.unique(np.append(np.linspace(0, len(x) - 1, max_points - 1).astype(int), len(x) - 1))
    return x[idx], y[idx]


def _empty(message: str, height: int = 360) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=16), x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


def training_curves(
    batch_history: dict[str, list[float]],
    epoch_history: dict[str, list[float]],
    metric: str = "loss",
    smoothing: float = 0.6,
    batches_per_epoch: int | None = None,
) -> go.Figure:
    """Per-batch (raw and smoothed) and per-epoch training/validation curves of one metric."""
    steps = batch_history.get("step", [])
    values = batch_history.get(metric, [])
    if not len(steps) or not len(values):
        return _empty("Waiting for the first batch…")
    per_epoch = batches_per_epoch or max(1, int(max(steps)))
    x = np.asarray(steps, dtype=float) / per_epoch
    pct = 100.0 if metric == "accuracy" else 1.0
    y = np.asarray(values, dtype=float) * pct
    fig = go.Figure()
    xs, ys = downsample(x, y)
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        name="per batch",
        line=dict(color=TRAIN_COLOR, width=1),
        opacity=0.3,
    )
    xs, ys = downsample(x, ema_smooth(y, smoothing))
    fig.add_scatter(
        x=xs, y=ys, mode="lines", name="per batch, smoothed", line=dict(color=TRAIN_COLOR, width=2)
    )
    epochs = epoch_history.get("epoch", [])
    if epochs and metric in epoch_history:
        fig.add_scatter(
            x=epochs,
            y=np.asarray(epoch_history[metric]) * pct,
            mode="lines+markers",
            name="training, epoch mean",
            line=dict(color="#9ec1ff", dash="dot"),
        )
    if epochs and f"val_{metric}" in epoch_history:
        fig.add_scatter(
            x=epochs,
            y=np.asarray(epoch_history[f"val_{metric}"]) * pct,
            mode="lines+markers",
            name="validation",
            line=dict(color=VAL_COLOR, width=2),
        )
    title = "Accuracy (%)" if metric == "accuracy" else "Loss (cross-entropy)"
    fig.update_xaxes(title="epoch", rangemode="tozero")
    fig.update_yaxes(title=title)
    return _layout(fig, title=dict(text=title, x=0, font=dict(size=14)))


def learning_rate_curve(
    batch_history: dict[str, list[float]], batches_per_epoch: int | None = None
) -> go.Figure:
    """The learning rate along training (shows the schedule)."""
    steps = batch_history.get("step", [])
    lr = batch_history.get("learning_rate", [])
    if not len(steps) or not len(lr):
        return _empty("Waiting for the first batch…", 220)
    per_epoch = batches_per_epoch or max(1, int(max(steps)))
    xs, ys = downsample(np.asarray(steps) / per_epoch, lr)
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#2ca02c")))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="learning rate", exponentformat="e")
    return _layout(fig, 220, showlegend=False)


def runs_overlay(histories: dict[str, dict[str, list[float]]], metric: str) -> go.Figure:
    """Several runs' per-epoch curves on one chart (training dashed, validation solid)."""
    if not histories:
        return _empty("Select runs to compare.")
    pct = 100.0 if metric == "accuracy" else 1.0
    fig = go.Figure()
    for i, (name, h) in enumerate(histories.items()):
        color = DIGIT_COLORS[i % len(DIGIT_COLORS)]
        epochs = h.get("epoch", [])
        if metric in h:
            fig.add_scatter(
                x=epochs,
                y=np.asarray(h[metric]) * pct,
                mode="lines+markers",
                name=f"{name} (train)",
                line=dict(color=color, dash="dash"),
            )
        if f"val_{metric}" in h:
            fig.add_scatter(
                x=epochs,
                y=np.asarray(h[f"val_{metric}"]) * pct,
                mode="lines+markers",
                name=f"{name} (validation)",
                line=dict(color=color),
            )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="accuracy (%)" if metric == "accuracy" else "loss")
    return _layout(fig, 380)


def parallel_coordinates(
    rows: list[dict], dimensions: list[str], color: str = "test_accuracy"
) -> go.Figure:
    """Hyperparameters of many runs against their test accuracy, one line per run."""
    if not rows:
        return _empty("No runs yet.")
    dims = []
    for name in [*dimensions, color]:
        values = [r.get(name) for r in rows]
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None
        )
        if numeric:
            arr = np.array([np.nan if v is None else float(v) for v in values])
            if name == color:
                arr = arr * 100
            dims.append(dict(label=name.replace("_", " "), values=arr))
        else:
            labels = sorted({str(v) for v in values})
            dims.append(
                dict(
                    label=name.replace("_", " "),
                    values=[labels.index(str(v)) for v in values],
                    tickvals=list(range(len(labels))),
                    ticktext=labels,
                )
            )
    colors = np.array([np.nan if r.get(color) is None else r[color] * 100 for r in rows])
    fig = go.Figure(
        go.Parcoords(
            line=dict(
                color=np.nan_to_num(
                    colors, nan=float(np.nanmin(colors)) if np.isfinite(colors).any() else 0
                ),
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(title="test acc %"),
            ),
            dimensions=dims,
        )
    )
    return _layout(fig, 400, margin=dict(l=60, r=40, t=60, b=20))


def confusion_heatmap(
    cm: np.ndarray, normalize: bool = False, show_diagonal: bool = True
) -> go.Figure:
    """Confusion matrix (rows = true digit, columns = predicted), clickable cell by cell."""
    cm = np.asarray(cm)
    n = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    z = share * 100 if normalize else cm.astype(float)
    if not show_diagonal:
        z = z.copy()
        np.fill_diagonal(z, np.nan)
    text = [
        [
            ""
            if (not show_diagonal and i == j)
            else (f"{z[i, j]:.1f}" if normalize else f"{int(cm[i, j])}")
            for j in range(n)
        ]
        for i in range(n)
    ]
    hover = [
        [
            f"true {i}, predicted {j}: {int(cm[i, j])} images ({share[i, j]:.1%} of the {i}s)"
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
            hovertext=hover,
            hoverinfo="text",
            colorscale="Blues",
            colorbar=dict(title="% of row" if normalize else "images"),
        )
    )
    # An almost invisible marker on every cell: clicking it reports (true, predicted).
    ii, jj = np.meshgrid(range(n), range(n), indexing="ij")
    fig.add_scatter(
        x=jj.ravel(),
        y=ii.ravel(),
        mode="markers",
        marker=dict(size=34, symbol="square", color="rgba(255,255,255,0.01)"),
        customdata=np.stack([ii.ravel(), jj.ravel()], axis=1),
        hovertext=[hover[i][j] for i, j in zip(ii.ravel(), jj.ravel(), strict=True)],
        hoverinfo="text",
        showlegend=False,
        name="cells",
    )
    # Fixed ranges: the big overlay markers would otherwise stretch the axes.
    fig.update_xaxes(title="predicted digit", tickmode="linear", side="top", range=[-0.5, n - 0.5])
    fig.update_yaxes(title="true digit", tickmode="linear", range=[n - 0.5, -0.5], scaleanchor="x")
    return _layout(fig, 520, clickmode="event+select", dragmode=False)


def cell_from_selection(event) -> tuple[int, int] | None:
    """(true, predicted) of the clicked confusion-matrix cell, from st.plotly_chart's event."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        points = getattr(getattr(event, "selection", None), "points", None)
    if not points:
        return None
    point = points[0]
    custom = point.get("customdata")
    if isinstance(custom, dict):  # Streamlit sends a point's customdata list as {"0": .., "1": ..}
        custom = [custom.get("0", custom.get(0)), custom.get("1", custom.get(1))]
    if custom is not None and len(custom) == 2 and None not in custom:
        return int(custom[0]), int(custom[1])
    if "x" in point and "y" in point:
        return int(point["y"]), int(point["x"])
    return None


def per_class_bars(precision, recall, f1) -> go.Figure:
    """Precision, recall and F1 of each digit as grouped bars."""
    fig = go.Figure()
    for name, values, color in (
        ("precision", precision, TRAIN_COLOR),
        ("recall", recall, VAL_COLOR),
        ("F1", f1, "#2ca02c"),
    ):
        fig.add_bar(x=list(range(10)), y=np.asarray(values) * 100, name=name, marker_color=color)
    low = float(np.min([np.min(precision), np.min(recall), np.min(f1)])) * 100
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(title="%", range=[max(0.0, low - 2), 100.5])
    return _layout(fig, 320, barmode="group")


def probability_bars(probs, highlight: int | None = None) -> go.Figure:
    """The ten class probabilities, the predicted one highlighted."""
    probs = np.asarray(probs, dtype=float)
    highlight = int(np.argmax(probs)) if highlight is None else highlight
    colors = [HIGHLIGHT if i == highlight else MUTED for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in range(len(probs))],
            y=probs * 100,
            marker_color=colors,
            text=[f"{p:.0%}" if p >= 0.005 else "" for p in probs],
            textposition="outside",
            hovertemplate="digit %{x}: %{y:.2f}%<extra></extra>",
        )
    )
    fig.update_xaxes(title="digit", type="category")
    fig.update_yaxes(title="probability (%)", range=[0, 109])
    return _layout(fig, 300, showlegend=False)


def image_figure(
    img,
    title: str = "",
    colorscale: str = "gray",
    zmin: float | None = None,
    zmax: float | None = None,
    show_scale: bool = False,
    height: int = 260,
) -> go.Figure:
    """A small image (digit, map) as a square heatmap without ticks."""
    img = np.asarray(img, dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=img,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            showscale=show_scale,
            hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return _layout(fig, height, title=dict(text=title, x=0, font=dict(size=13)))


def overlay_figure(img28, heat28, title: str = "", signed: bool = False) -> go.Figure:
    """A digit in grey with a semi-transparent heat map on top (diverging colours when signed)."""
    heat = np.asarray(heat28, dtype=float)
    fig = image_figure(img28, title, zmin=0, zmax=1)
    limit = float(np.max(np.abs(heat))) or 1.0
    fig.add_heatmap(
        z=heat,
        colorscale="RdBu_r" if signed else "Hot",
        zmin=-limit if signed else 0,
        zmax=limit,
        opacity=0.6,
        showscale=True,
        colorbar=dict(thickness=10),
        hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>",
    )
    return fig


def activation_grid(array, max_channels: int = 16, title: str = "") -> go.Figure:
    """The first channels of a conv layer's output as small images."""
    array = np.asarray(array, dtype=float)
    channels = min(max_channels, array.shape[-1])
    cols = min(8, channels)
    rows = int(np.ceil(channels / cols))
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.02)
    for c in range(channels):
        fig.add_trace(
            go.Heatmap(z=array[..., c], colorscale="Viridis", showscale=False, hoverinfo="skip"),
            row=c // cols + 1,
            col=c % cols + 1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    return _layout(fig, 90 * rows + 40, title=dict(text=title, x=0, font=dict(size=13)))


def class_counts(train_counts, test_counts) -> go.Figure:
    """How many images of each digit in train and test."""
    fig = go.Figure()
    fig.add_bar(x=list(range(10)), y=list(train_counts), name="train", marker_color=TRAIN_COLOR)
    fig.add_bar(x=list(range(10)), y=list(test_counts), name="test", marker_color=VAL_COLOR)
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(title="images")
    return _layout(fig, 320, barmode="group")


def pixel_histogram(counts, log_y: bool = True) -> go.Figure:
    """How often each pixel intensity 0-255 occurs (counts per value, or raw pixels)."""
    counts = np.asarray(counts)
    if counts.shape != (256,):
        counts = np.bincount(counts.astype(np.uint8).ravel(), minlength=256)
    fig = go.Figure(go.Bar(x=list(range(256)), y=counts, marker_color=TRAIN_COLOR))
    fig.update_xaxes(title="pixel value (0 = black background, 255 = full ink)")
    fig.update_yaxes(title="pixels", type="log" if log_y else "linear")
    return _layout(fig, 300, showlegend=False, bargap=0)


def embedding_scatter(coords, labels, title: str = "", indices=None) -> go.Figure:
    """A 2-D map of samples, one colour per digit; customdata holds each sample's index."""
    coords = np.asarray(coords)
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
            hovertemplate=f"digit {d}<br>sample #%{{customdata}}<extra></extra>",
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(
        fig, 440, title=dict(text=title, x=0, font=dict(size=14)), clickmode="event+select"
    )


def points_from_selection(event) -> list[int]:
    """Sample indices (customdata) of the points selected on an embedding_scatter."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    out = []
    for p in points or []:
        custom = p.get("customdata")
        if custom is not None:
            out.append(int(custom[0] if isinstance(custom, (list, tuple)) else custom))
    return out


def per_class_comparison(acc_a, acc_b, name_a: str, name_b: str) -> go.Figure:
    """Two runs' per-class accuracy side by side."""
    fig = go.Figure()
    fig.add_bar(x=list(range(10)), y=np.asarray(acc_a) * 100, name=name_a, marker_color=TRAIN_COLOR)
    fig.add_bar(x=list(range(10)), y=np.asarray(acc_b) * 100, name=name_b, marker_color=VAL_COLOR)
    low = float(min(np.min(acc_a), np.min(acc_b))) * 100
    fig.update_xaxes(title="digit", tickmode="linear")
    fig.update_yaxes(title="accuracy (%)", range=[max(0.0, low - 2), 100.5])
    return _layout(fig, 320, barmode="group")
