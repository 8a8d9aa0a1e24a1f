"""The command line end to end on a small slice."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_train_then_evaluate(mnist_dir, tmp_path):
    runs = tmp_path / "runs"
    out = run("train", "--preset", "fast", "--train-samples", "2000", "--epochs", "1",
              "--data-dir", str(mnist_dir), "--runs-dir", str(runs))  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert any(line.startswith("epoch 1/1") for line in lines)
    result = json.loads(lines[-1])
    assert {"run", "test_accuracy", "test_loss", "train_seconds", "epochs", "peak_rss_mb"} <= set(
        result
    )
    assert result["epochs"] == 1 and 0.5 < result["test_accuracy"] <= 1.0
    assert (runs / result["run"] / "model.keras").is_file()
    again = run("evaluate", result["run"], "--runs-dir", str(runs), "--data-dir", str(mnist_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    evaluated = json.loads(again.stdout.strip().splitlines()[-1])
    assert abs(evaluated["test_accuracy"] - result["test_accuracy"]) < 1e-6
    assert evaluated["test_samples"] == 10_000


def test_bad_arguments_fail_clearly(tmp_path):
    bad = run("train", "--preset", "huge")
    assert bad.returncode != 0 and "invalid choice" in bad.stderr
    missing = run("evaluate", "nope", "--runs-dir", str(tmp_path))
    assert missing.returncode == 1 and "No run named 'nope'" in missing.stderr
