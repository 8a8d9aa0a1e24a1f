"""The per-batch curve a saved run keeps, stored compactly under history.json's "per_batch" key.

Every page lists the runs, and listing reads every run's history.json: 2,000 points of five
series as JSON numbers made it 266 KB and 10-19 ms to parse per run (20 runs: 0.2-0.4 s a page
on a busy 2-core machine); as one base64 string of float32 per series, 57 KB and 0.3 ms, the
same as a history without them. Readers that know only the per-epoch lists ignore the key;
`read_batches` turns it back into lists.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_POINTS = 2000
"""A run keeps at most this many per-batch points (means of runs of consecutive batches)."""
KEYS = ("loss", "accuracy", "learning_rate")
ENCODING = "float32-le-base64"


def batch_record(batch_history: Mapping[str, list[float]], steps_per_epoch: int) -> dict:
    """The record of a job's per-batch curves: exact up to MAX_POINTS batches, else the means of
    MAX_POINTS runs of consecutive batches; x in batches ("step") and epochs ("epochs_done")."""
    steps = np.asarray(batch_history.get("step", []), dtype=np.float64)
    if not len(steps):
        return {}
    keys = [k for k in KEYS if len(batch_history.get(k, [])) == len(steps)]
    columns = {"step": steps, **{k: np.asarray(batch_history[k], np.float64) for k in keys}}
    if len(steps) > MAX_POINTS:
        chunks = np.array_split(np.arange(len(steps)), MAX_POINTS)
        columns = {k: np.array([v[c].mean() for c in chunks]) for k, v in columns.items()}
    if steps_per_epoch:
        columns["epochs_done"] = columns["step"] / steps_per_epoch
    return encode(columns)


def encode(columns: Mapping[str, Any]) -> dict:
    """Equal-length series as one base64 string of little-endian float32 each."""
    arrays = {k: np.asarray(v, dtype="<f4") for k, v in columns.items()}
    length = len(next(iter(arrays.values()))) if arrays else 0
    return {
        "encoding": ENCODING,
        "length": length,
        "columns": {k: base64.b64encode(v.tobytes()).decode("ascii") for k, v in arrays.items()},
    }


MAX_RECORD_POINTS = 100_000


def problem(record: Any) -> str | None:
    """Why a saved per-batch record is not one encode() writes (None when it is)."""
    if not isinstance(record, Mapping) or record.get("encoding") != ENCODING:
        return f"per_batch must be a record encoded as {ENCODING}"
    length, columns = record.get("length"), record.get("columns")
    if (
        not isinstance(length, int)
        or isinstance(length, bool)
        or not 0 <= length <= MAX_RECORD_POINTS
    ):
        return f"per_batch length must be a count up to {MAX_RECORD_POINTS:,}"
    if not isinstance(columns, Mapping):
        return "per_batch columns must be an object of series"
    for key, text in columns.items():
        if not isinstance(key, str) or not isinstance(text, str):
            return "per_batch columns must map names to base64 text"
        try:
            size = len(base64.b64decode(text, validate=True))
        except ValueError:
            return f"per_batch column {key!r} is not base64"
        if size != 4 * length:
            return f"per_batch column {key!r} holds {size // 4} values, not {length}"
    return None


def read_batches(history: Mapping[str, Any], shortest: bool = False) -> dict[str, list[float]]:
    """A run's saved per-batch series as lists ({} for runs saved without them); `shortest`
    gives each value as the shortest decimal that is the same float32 (0.001, not 0.0010000000474),
    for files people read (slower: 10,000 values take tens of milliseconds)."""
    record = history.get("per_batch")
    if not isinstance(record, Mapping) or not record:
        return {}
    if record.get("encoding") != ENCODING:
        # Plain lists (or anything else a future writer puts here): keep what is a list.
        return {k: list(v) for k, v in record.items() if isinstance(v, list)}
    out = {}
    for key, text in (record.get("columns") or {}).items():
        try:
            values = np.frombuffer(base64.b64decode(text), dtype="<f4")
            out[key] = (values.astype(str) if shortest else values).astype(float).tolist()
        except (ValueError, TypeError):
            continue  # an unreadable series is left out, the others still draw
    return out


def with_batches(history: Mapping[str, Any], shortest: bool = False) -> dict[str, Any]:
    """The history with its per-batch series as plain lists, for charts and exports."""
    batches = read_batches(history, shortest)
    out = {k: v for k, v in history.items() if k != "per_batch"}
    if batches:
        out["per_batch"] = batches
    return out
