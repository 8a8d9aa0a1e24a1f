"""The command line end to end, as a user runs it, on a small slice of MNIST."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("MNIST_DIR", "DIGITLAB_RUNS_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_train_then_evaluate(mnist_dir, tmp_path):
    runs = tmp_path / "runs"
    out = run("train", "--preset", "fast", "--train-samples", "1000", "--epochs", "1",
              "--data-dir", str(mnist_dir), "--runs-dir", str(runs))  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("data: Local IDX files")
    assert any(line.startswith("epoch 1/1") for line in lines)
    result = json.loads(lines[-1])
    assert {"run", "test_accuracy", "test_loss", "train_seconds", "epochs", "peak_rss_mb"} <= set(
        result
    )
    assert result["state"] == "finished" and result["preset"] == "fast"
    assert result["epochs"] == 1 and result["train_seconds"] > 0 and result["peak_rss_mb"] > 0
    assert 0.1 < result["test_accuracy"] <= 1.0 and result["test_loss"] > 0
    run_dir = runs / result["run"]
    assert (run_dir / "model.keras").is_file()
    # What was printed is what was saved.
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_accuracy"] == result["test_accuracy"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "fast" and config["epochs"] == 1
    assert config["train_samples"] == 1000

    again = run("evaluate", result["run"], "--runs-dir", str(runs), "--data-dir", str(mnist_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    evaluated = json.loads(again.stdout.strip().splitlines()[-1])
    assert evaluated["run"] == result["run"] and evaluated["test_samples"] == 10_000
    assert abs(evaluated["test_accuracy"] - result["test_accuracy"]) < 1e-6
    assert abs(evaluated["test_loss"] - result["test_loss"]) < 1e-5
    assert evaluated["recorded_test_accuracy"] == result["test_accuracy"]


def test_bad_preset_fails_on_stderr(tmp_path):
    bad = run("train", "--preset", "huge", "--runs-dir", str(tmp_path))
    assert bad.returncode != 0 and bad.stdout == ""
    assert "invalid choice: 'huge'" in bad.stderr and "tutorial" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_out_of_range_value_fails_on_stderr(tmp_path):
    bad = run("train", "--preset", "fast", "--batch-size", "0", "--runs-dir", str(tmp_path))
    assert bad.returncode == 2 and bad.stdout == ""
    assert "batch_size must be between 1 and 4096" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_run_fails_on_stderr(tmp_path):
    missing = run("evaluate", "nope", "--runs-dir", str(tmp_path))
    assert missing.returncode == 1 and "No run named 'nope'" in missing.stderr
