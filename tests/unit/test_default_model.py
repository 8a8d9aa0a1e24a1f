"""The model that ships in models/default: its recorded accuracy is what it really scores."""

import json
from pathlib import Path

import pytest

from core.evaluation import evaluate
from core.runs import DEFAULT_MODEL_DIR, DEFAULT_RUN, RunStore


@pytest.fixture(scope="module")
def test_set(mnist):
    return mnist.x_test, mnist.y_test


def test_default_model_is_listed_and_read_only(tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    runs, bad = store.list_runs()
    assert bad == []
    assert [r.name for r in runs] == [DEFAULT_RUN]
    assert runs[0].builtin
    assert runs[0].config.augment, "the default model is trained with augmentation for drawings"


def test_recorded_accuracy_matches_a_fresh_evaluation(test_set, tmp_path: Path):
    x_test, y_test = test_set
    store = RunStore(tmp_path / "runs")
    model = store.load_model(DEFAULT_RUN)
    recorded = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    result = evaluate(model, x_test, y_test)
    assert len(y_test) == 10_000
    assert result.accuracy == pytest.approx(recorded["test_accuracy"], abs=1e-4)
    assert result.loss == pytest.approx(recorded["test_loss"], rel=1e-3)
    assert result.accuracy >= 0.99
    # The README beside the model states the same figure.
    readme = (DEFAULT_MODEL_DIR / "README.md").read_text()
    assert f"{recorded['test_accuracy']:.2%}" in readme
