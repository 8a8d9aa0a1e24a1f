"""`python -m core train --redis-url URL` and `python -m core worker`, as a user runs them."""

import json

import pytest

from tests.conftest import run_cli as core

LOCAL_KEYS = {"run", "state", "preset", "test_accuracy", "test_loss", "train_seconds", "epochs"}
LOCAL_KEYS |= {"images_per_second", "peak_rss_mb", "data_source"}


@pytest.mark.slow
def test_train_enqueues_prints_progress_and_ends_with_the_json_line(
    redis_url, start_worker, tmp_path
):
    start_worker(redis_url, "w-cli")
    runs = tmp_path / "runs"
    out = core("train", "--preset", "fast", "--train-samples", "1000", "--epochs", "2",
               "--redis-url", redis_url, "--runs-dir", str(runs))  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("queued job-") and redis_url in lines[0]
    assert any(line.startswith("epoch 1/2") for line in lines)
    assert any(line.startswith("epoch 2/2") and "accuracy" in line for line in lines)
    result = json.loads(lines[-1])
    assert set(result) == LOCAL_KEYS | {"worker"}
    assert result["worker"] == "w-cli" and result["state"] == "finished"
    assert result["epochs"] == 2 and result["data_source"] == "local"
    metrics = json.loads((runs / result["run"] / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(result["test_accuracy"])


def test_a_bad_or_unreachable_url_is_named():
    out = core("train", "--preset", "fast", "--redis-url", "localhost:6379", timeout=60)
    assert out.returncode == 1 and "'localhost:6379' is not a Redis URL" in out.stderr
    out = core("worker", "--redis-url", "http://x", "--burst", timeout=60)
    assert out.returncode == 2 and "'http://x' is not a Redis URL" in out.stderr
    out = core("worker", "--redis-url", "redis://127.0.0.1:1/0", "--burst", timeout=60)
    assert out.returncode == 1 and "cannot reach Redis at redis://127.0.0.1:1/0" in out.stderr
    assert "Traceback" not in out.stderr
