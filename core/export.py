"""A run's history and the runs table as CSV and JSON files, for download buttons.

Plain text out of plain data: no Streamlit, no Keras. Numbers are written exactly (Python's
shortest round-trip repr), so a file read back gives the run's own values; the per-batch curve,
saved as float32, is written as the shortest decimal of each saved float32.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from core.records import read_batches, with_batches
from core.runs import RunInfo

EPOCH_FIRST = ("epoch", "epochs_done")
"""Columns that lead a history table (where in training each row is)."""
BATCH_FIRST = ("step", "epochs_done")


def _columns(series: Mapping[str, Any], first: Sequence[str]) -> list[str]:
    """The list-valued keys of a history, where-in-training first, the rest in sorted order."""
    keys = [k for k, v in series.items() if isinstance(v, list)]
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def _series(history: Mapping[str, Any], per_batch: bool) -> tuple[Mapping[str, Any], list[str]]:
    """The per-epoch lists (or the saved per-batch ones) and their columns in order."""
    series = read_batches(history, shortest=True) if per_batch else history
    return series, _columns(series, BATCH_FIRST if per_batch else EPOCH_FIRST)


def history_rows(history: Mapping[str, Any], per_batch: bool = False) -> list[dict[str, Any]]:
    """One row per epoch (or per saved batch point) with every series the run recorded."""
    series, columns = _series(history, per_batch)
    n = max((len(series[c]) for c in columns), default=0)
    return [{c: series[c][i] if i < len(series[c]) else None for c in columns} for i in range(n)]


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header; None and NaN are empty cells."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def history_csv(history: Mapping[str, Any], per_batch: bool = False) -> str:
    """A run's per-epoch history (or its saved per-batch curve) as CSV."""
    return _csv(history_rows(history, per_batch), _series(history, per_batch)[1])


def run_json(info: RunInfo) -> str:
    """One run's record as JSON: name, configuration, test metrics, facts and full history."""
    record = {
        "name": info.name,
        "config": info.config.to_dict(),
        "metrics": info.metrics,
        "meta": info.meta,
        "history": with_batches(info.history, shortest=True),
    }
    return json.dumps(record, indent=2, default=_json_default)


def table_rows(runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """The runs table's rows, as the Train page lists them."""
    return [r.row() for r in runs]


def table_csv(runs: Sequence[RunInfo]) -> str:
    """The runs table as CSV, one row per run."""
    rows = table_rows(runs)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return _csv(rows, columns)


def table_json(runs: Sequence[RunInfo]) -> str:
    """The runs table as a JSON list of rows."""
    return json.dumps(table_rows(runs), indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays as plain numbers and lists."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
