"""core.export: the files parse with the standard library and give back the run's own values."""

import csv
import io
import json
from pathlib import Path

import pytest

from core import export, records
from core.runs import RunInfo
from tests.conftest import TINY_CONFIG

HISTORY = {
    "epoch": [1.0, 2.0],
    "epochs_done": [1.0, 1.5],
    "loss": [0.41234567891234, 0.2],
    "accuracy": [0.9, 0.95],
    "val_loss": [0.5, 0.3],
    "learning_rate": [0.001, 0.0005],
}
BATCHES = {
    "step": [1.0, 2.0, 3.0],
    "epochs_done": [0.5, 1.0, 1.5],
    "loss": [0.7, 0.4, 0.2],
    "learning_rate": [0.001, 0.001, 0.0005],
}
HISTORY["per_batch"] = records.encode(BATCHES)  # as a job saves it


def run(name="r1", history=HISTORY, metrics=None, meta=None):
    return RunInfo(
        name,
        Path("runs") / name,
        TINY_CONFIG,
        history,
        metrics or {"test_accuracy": 0.97, "test_loss": 0.1},
        meta or {"status": "stopped", "epochs_completed": 2, "saved_at": 1_700_000_000.0},
    )


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_history_csv_has_one_row_per_epoch_with_the_runs_exact_values():
    rows = read_csv(export.history_csv(HISTORY))
    assert len(rows) == 2
    assert list(rows[0])[:2] == ["epoch", "epochs_done"]  # where in training, first
    assert "per_batch" not in rows[0]
    for key in ("epoch", "epochs_done", "loss", "accuracy", "val_loss", "learning_rate"):
        assert [float(r[key]) for r in rows] == HISTORY[key]  # exact: no rounding on the way


def test_history_csv_per_batch_and_a_run_without_it():
    rows = read_csv(export.history_csv(HISTORY, per_batch=True))
    assert list(rows[0])[:2] == ["step", "epochs_done"]
    for key, values in BATCHES.items():
        assert [float(r[key]) for r in rows] == values  # the shortest decimals of the float32s
    old = {"epoch": [1.0], "loss": [0.3]}
    assert read_csv(export.history_csv(old, per_batch=True)) == []


def test_a_series_logged_fewer_times_leaves_empty_cells():
    history = {"epoch": [1.0, 2.0], "loss": [0.5, 0.4], "val_accuracy": [0.9]}
    rows = read_csv(export.history_csv(history))
    assert [r["val_accuracy"] for r in rows] == ["0.9", ""]


def test_run_json_holds_the_whole_history_and_the_records():
    info = run()
    record = json.loads(export.run_json(info))
    assert record["history"] == {k: v for k, v in HISTORY.items() if k != "per_batch"} | {
        "per_batch": BATCHES
    }
    assert record["metrics"] == info.metrics and record["meta"] == info.meta
    assert record["name"] == "r1" and record["config"] == TINY_CONFIG.to_dict()


def test_runs_table_csv_and_json_match_the_rows():
    runs = [run("r1"), run("r2", metrics={"test_accuracy": None, "test_loss": 0.2})]
    expected = [r.row() for r in runs]
    table = json.loads(export.table_json(runs))
    assert table == json.loads(json.dumps(expected))
    rows = read_csv(export.table_csv(runs))
    assert [r["name"] for r in rows] == ["r1", "r2"]
    assert list(rows[0]) == list(expected[0])
    assert float(rows[0]["test_accuracy"]) == pytest.approx(0.97, abs=0)
    assert rows[1]["test_accuracy"] == ""  # None is an empty cell
    for row, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            assert row[key] == ("" if value is None else str(value)), key
