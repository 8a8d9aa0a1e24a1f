"""Light SVG line charts for the live Train view; no Streamlit, no Plotly inside.

While a job trains, its charts are redrawn every second. A redraw of the three live charts as
Plotly figures costs headless Chromium about 0.2 core-seconds, as SVG about 0.04 (a page redrawing
them every second, measured against one redrawing nothing), and on a shared machine that time is
taken from training (benchmarks/bench_train_page.py). So the live view draws these, from the same lines as the interactive charts (`charts.curve_series`,
`charts.lr_series`), and the page switches to the interactive Plotly ones when the job ends or
when the visitor asks for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from core import charts
from core.charts import Series

TEXT, TICK, GRID = "#fafafa", "#a3a8b8", "rgba(250,250,250,0.12)"
NOT_FINITE = "No finite values to draw: the training may have diverged (NaN)."
FONT = 12  # px, in the chart's own units: 1:1 at the width it is drawn for
CHAR = 0.56 * FONT  # average width of a character, for laying out the legend and labels


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2, 2.5 or 5 times a power of ten) within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten within [lo, hi] (with 2 and 5 times them when the range spans under two
    decades), for a log axis."""
    if lo <= 0 or hi <= lo:
        return [lo] if lo > 0 else []
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1,) if b - a > 2 else (1, 2, 5)
    out = [m * 10.0**k for k in range(a, b + 1) for m in mults]
    return [v for v in out if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]


def tick_label(value: float, step: float, suffix: str = "", scientific: bool = False) -> str:
    """A tick's text: as few decimals as the step needs, or 1e-3 style for tiny values."""
    if scientific and value and abs(value) < 1e-2:
        mantissa, exponent = f"{value:.1e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}{suffix}"
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1  # 0.25-steps read 0.25 and 0.75, not 0.2 and 0.8
    return f"{value:.{decimals}f}{suffix}"


class _Axis:
    """Data to pixels on one axis, linear or log."""

    def __init__(self, lo: float, hi: float, start: float, end: float, log: bool) -> None:
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        if self.hi <= self.lo:
            self.hi = self.lo + 1.0
        self.start, self.end = start, end

    def __call__(self, values: np.ndarray) -> np.ndarray:
        v = np.log10(np.where(values > 0, values, np.nan)) if self.log else values
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def _points(xs: np.ndarray, ys: np.ndarray) -> list[str]:
    """SVG polyline point lists, split wherever a value is missing (NaN, or <= 0 on a log axis)."""
    runs, current = [], []
    for px, py in zip(xs, ys, strict=True):
        if math.isfinite(px) and math.isfinite(py):
            current.append(f"{px:.1f},{py:.1f}")
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [" ".join(run) for run in runs]


def svg_chart(
    lines: Sequence[Series],
    *,
    title: str,
    x_title: str,
    y_title: str,
    y_suffix: str = "",
    log_x: bool = False,
    log_y: bool = False,
    y_from_zero: bool = False,
    scientific_y: bool = False,
    legend: bool = True,
    width: int = 440,
    height: int = 360,
    message: str = "",
    uid: str = "chart",
    batches: int = 0,
) -> str:
    """One line chart as an SVG document: title, legend, grid, ticks, axis titles and lines (with
    epoch markers, open where an epoch was cut short). It scales to its container's width; `uid`
    names its clip path, so it must differ between charts on one page; `batches` (how many
    batches the chart has seen) is written on it as data-batches, for tests and benchmarks."""
    drawn = [s for s in lines if len(s.x)]
    # The legend wraps onto as many rows as it needs.
    slots, x, row = [], 4.0, 0
    for s in drawn if legend else []:
        item = 27 + len(s.name) * CHAR
        if x > 4 and x + item > width:
            x, row = 4.0, row + 1
        slots.append((x, row))
        x += item + 14
    top = (24 if title else 8) + (18 * (row + 1) + 4 if slots else 0)
    left, right, bottom = 62, 12, 44
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title or y_title)}" '
        f'data-batches="{batches}" '
        f'style="font-family:inherit;font-size:{FONT}px;max-width:{width * 2}px">',
        f"<title>{escape(title or y_title)}</title>",
    ]
    if title:
        parts.append(
            f'<text x="4" y="16" fill="{TEXT}" font-weight="600" font-size="{FONT + 2}">'
            f"{escape(title)}</text>"
        )
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    xs_all = np.concatenate([s.x for s in drawn]).astype(float) if drawn else np.array([])
    ys_all = np.concatenate([s.y for s in drawn]).astype(float) if drawn else np.array([])
    if log_x:
        xs_all = xs_all[xs_all > 0]
    if log_y:
        ys_all = ys_all[ys_all > 0]
    xs_all, ys_all = xs_all[np.isfinite(xs_all)], ys_all[np.isfinite(ys_all)]
    if not len(xs_all) or not len(ys_all):
        parts.append(
            f'<text x="{(x0 + x1) / 2:.0f}" y="{(y0 + y1) / 2:.0f}" fill="{TICK}" '
            f'text-anchor="middle">{escape(message or (NOT_FINITE if drawn else charts.WAITING))}'
            "</text></svg>"
        )
        return "".join(parts)

    xlo = float(xs_all.min()) if log_x else 0.0
    xhi = float(xs_all.max())
    if not log_x and xhi <= 0:
        xhi = 1.0
    ylo, yhi = float(ys_all.min()), float(ys_all.max())
    if y_from_zero and not log_y:
        ylo = min(0.0, ylo)
        yhi = yhi * 1.15 if yhi > 0 else 1.0
    elif not log_y:
        pad = (yhi - ylo) * 0.05 or abs(yhi) * 0.05 or 1.0
        ylo, yhi = ylo - pad, yhi + pad
    elif yhi <= ylo:
        ylo, yhi = ylo / 2, yhi * 2
    if xhi <= xlo:
        xhi = xlo * 10 if log_x else xlo + 1
    sx = _Axis(xlo, xhi, x0, x1, log_x)
    sy = _Axis(ylo, yhi, y1, y0, log_y)

    # Grid and ticks.
    yt = log_ticks(ylo, yhi) if log_y else nice_ticks(ylo, yhi)
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for v, py in zip(yt, sy(np.array(yt, dtype=float)), strict=True):
        label = tick_label(v, v if log_y else ystep, y_suffix, scientific_y)
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{py:.1f}" y2="{py:.1f}" stroke="{GRID}"/>'
            f'<text x="{x0 - 6}" y="{py + 4:.1f}" fill="{TICK}" text-anchor="end">{label}</text>'
        )
    xt = log_ticks(xlo, xhi) if log_x else nice_ticks(xlo, xhi, 6)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    for v, px in zip(xt, sx(np.array(xt, dtype=float)), strict=True):
        label = tick_label(v, v if log_x else xstep)
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y1}" y2="{y1 + 4}" stroke="{TICK}"/>'
            f'<text x="{px:.1f}" y="{y1 + 17}" fill="{TICK}" text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="{TICK}" stroke-opacity="0.5"/>'
        f'<text x="{(x0 + x1) / 2:.0f}" y="{height - 6}" fill="{TEXT}" text-anchor="middle">'
        f"{escape(x_title + (', log scale' if log_x else ''))}</text>"
        f'<text transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" fill="{TEXT}" '
        f'text-anchor="middle">{escape(y_title)}</text>'
    )

    # Lines and markers, clipped to the plot area.
    parts.append(
        f'<clipPath id="{uid}-plot"><rect x="{x0 - 5}" y="{y0 - 5}" width="{x1 - x0 + 10}" '
        f'height="{y1 - y0 + 10}"/></clipPath><g clip-path="url(#{uid}-plot)">'
    )
    for s in drawn:
        px, py = sx(np.asarray(s.x, dtype=float)), sy(np.asarray(s.y, dtype=float))
        dash = ' stroke-dasharray="2 3"' if s.dash == "dot" else ""
        for pts in _points(px, py):
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{s.color}" '
                f'stroke-width="{s.width}" stroke-opacity="{s.opacity}" '
                f'stroke-linejoin="round"{dash}/>'
            )
        if s.markers:
            partial = s.partial if s.partial is not None else np.zeros(len(px), dtype=bool)
            for cx, cy, open_ in zip(px, py, partial, strict=True):
                if math.isfinite(cx) and math.isfinite(cy):
                    fill = "none" if open_ else s.color
                    parts.append(
                        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{fill}" '
                        f'stroke="{s.color}" stroke-width="1.5"/>'
                    )
    parts.append("</g>")

    for s, (x, row) in zip(drawn, slots, strict=False):
        y = (24 if title else 8) + 12 + 18 * row
        dash = ' stroke-dasharray="2 3"' if s.dash == "dot" else ""
        parts.append(
            f'<line x1="{x:.0f}" x2="{x + 22:.0f}" y1="{y - 4}" y2="{y - 4}" '
            f'stroke="{s.color}" stroke-width="{max(s.width, 1.5)}" '
            f'stroke-opacity="{max(s.opacity, 0.5)}"{dash}/>'
            f'<text x="{x + 27:.0f}" y="{y}" fill="{TEXT}">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def live_curves(
    batch_history: Mapping[str, Sequence[float]],
    epoch_history: Mapping[str, Sequence[float]],
    metric: str,
    smoothing: float,
    batches_per_epoch: int | None,
    log_x: bool = False,
) -> str:
    """The live chart of one metric (loss or accuracy): the lines of `charts.training_curves`,
    at most charts.LIVE_POINTS per line, the last charts.LIVE_TAIL of them exact."""
    lines = charts.curve_series(
        batch_history,
        epoch_history,
        metric,
        smoothing,
        batches_per_epoch,
        charts.LIVE_POINTS,
        charts.LIVE_TAIL,
    )
    title, y_title = charts.METRIC_TITLES.get(metric, (metric, metric))
    in_epochs = bool(batches_per_epoch) or not batch_history.get("step")
    return svg_chart(
        lines,
        title=title,
        x_title=charts.EPOCH_AXIS if in_epochs else charts.BATCH_AXIS,
        y_title=y_title,
        y_suffix="%" if charts.metric_scale(metric) == 100.0 else "",
        log_x=log_x,
        uid=f"live-{metric}",
        batches=len(batch_history.get("step", [])),
    )


def live_learning_rate(
    history: Mapping[str, Sequence[float]],
    batches_per_epoch: int | None,
    log_x: bool = False,
) -> str:
    """The live learning-rate chart, full width: from zero, or on a log axis when it spans a
    factor of ten or more (as `charts.learning_rate_curve`)."""
    line, x_title = charts.lr_series(
        history, batches_per_epoch, charts.LIVE_POINTS, charts.LIVE_TAIL
    )
    lines = [line] if line is not None else []
    log_y = bool(lines) and charts.spans_decades(line.y)
    return svg_chart(
        lines,
        title="",
        x_title=x_title,
        y_title="learning rate (step size)",
        log_x=log_x,
        log_y=log_y,
        y_from_zero=True,
        scientific_y=True,
        legend=False,
        width=880,
        height=220,
        uid="live-lr",
        batches=len(history.get("step", [])),
    )
