"""core.records: the per-batch curve a run keeps, compact in history.json and read back exactly."""

import json

import numpy as np
import pytest

from core import records


def test_a_short_run_is_kept_batch_by_batch():
    history = {"step": [1.0, 2.0, 3.0], "loss": [3.0, 2.0, 1.0], "seconds": [0.1, 0.2, 0.3]}
    record = records.batch_record(history, steps_per_epoch=2)
    assert record["length"] == 3 and set(record["columns"]) == {"step", "loss", "epochs_done"}
    back = records.read_batches({"epoch": [1.0], "per_batch": record})
    assert back == {"step": [1.0, 2.0, 3.0], "loss": [3.0, 2.0, 1.0], "epochs_done": [0.5, 1, 1.5]}
    assert records.batch_record({}, 10) == {}


def test_a_long_run_keeps_the_means_of_runs_of_consecutive_batches():
    n = 4500  # 2,000 runs of consecutive batches: 500 of 3 batches, then 1,500 of 2
    history = {
        "step": [float(s) for s in range(1, n + 1)],
        "loss": [float(2 * s) for s in range(1, n + 1)],
    }
    back = records.read_batches({"per_batch": records.batch_record(history, 450)})
    assert len(back["step"]) == records.MAX_POINTS
    assert back["step"][:2] == [2.0, 5.0] and back["loss"][0] == 4.0  # steps 1-3, then 4-6
    assert back["step"][-1] == 4499.5
    assert back["epochs_done"][-1] == pytest.approx(4499.5 / 450, rel=1e-6)


def test_the_record_is_small_and_reads_back_as_float32():
    rng = np.random.default_rng(0)
    series = {k: rng.random(2000).tolist() for k in ("step", "loss", "accuracy", "learning_rate")}
    record = records.encode(series)
    text = json.dumps({"epoch": [1.0], "per_batch": record}, indent=2)
    # Four series of 2,000 numbers: about 43 KB as base64 float32, against 200 KB as JSON numbers.
    assert len(text) < 45_000 < len(json.dumps(series, indent=2)) / 4
    back = records.read_batches(json.loads(text))
    for key, values in series.items():
        assert back[key] == np.asarray(values, np.float32).astype(float).tolist()
    assert records.read_batches({"per_batch": records.encode({"lr": [0.001]})}, True) == {
        "lr": [0.001]
    }
    assert records.read_batches({"per_batch": records.encode({"lr": [0.001]})})["lr"] != [0.001]


def test_old_runs_and_plain_lists_read_as_they_are():
    assert records.read_batches({"epoch": [1.0], "loss": [0.3]}) == {}
    plain = {"step": [1.0, 2.0], "loss": [0.5, 0.4]}
    assert records.read_batches({"per_batch": plain}) == plain
    history = {"epoch": [1.0], "per_batch": records.encode(plain)}
    assert records.with_batches(history, shortest=True) == {"epoch": [1.0], "per_batch": plain}
    assert records.with_batches({"epoch": [1.0]}) == {"epoch": [1.0]}
    broken = {"per_batch": {"encoding": records.ENCODING, "columns": {"loss": "not base64!"}}}
    assert records.read_batches(broken) == {}
