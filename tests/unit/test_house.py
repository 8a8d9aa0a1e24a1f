"""The house's walls: core/ imports no Streamlit, pages import no TensorFlow/Keras, the one
private Streamlit patch still finds what it patches, and seeding is per job."""

import ast
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_CONFIG


def imported_modules(path: Path) -> set[str]:
    """Top-level package names a Python file imports, anywhere in it (functions included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_streamlit(path):
    assert not {"streamlit", "streamlit_drawable_canvas", "ui"} & imported_modules(path)


@pytest.mark.parametrize(
    "path", [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))], ids=lambda p: p.name
)
def test_pages_import_no_tensorflow_or_keras(path):
    assert not {"tensorflow", "keras"} & imported_modules(path)


def test_the_walls_test_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import streamlit as st\n    from keras import layers\n")
    assert {"streamlit", "keras"} <= imported_modules(probe)


def test_the_private_streamlit_patch_still_has_its_target():
    # If this fails, a Streamlit upgrade renamed or moved the after-run clean-up that clears the
    # Keras session (2.6x slower training with the page open): see ui/patch.py.
    from streamlit.runtime.scriptrunner import script_runner

    from ui import patch

    assert callable(getattr(script_runner, patch.PATCHED_NAME, None)), patch.PATCHED_NAME
    patch.apply()
    assert getattr(script_runner, patch.PATCHED_NAME) is patch.clean_without_clearing_keras


def test_the_patch_refuses_to_guess_when_its_target_is_gone(monkeypatch):
    from streamlit.runtime.scriptrunner import script_runner

    from ui import patch

    monkeypatch.delattr(script_runner, patch.PATCHED_NAME)
    with pytest.raises(RuntimeError, match="Streamlit changed its after-run clean-up"):
        patch.apply()


def test_two_models_built_together_with_one_seed_start_with_the_same_weights():
    from core.models import build_model

    built = {}

    def build(name: str, seed: int) -> None:
        import dataclasses

        built[name] = build_model(dataclasses.replace(TINY_CONFIG, seed=seed, dense_units=8))

    threads = [
        threading.Thread(target=build, args=(n, s)) for n, s in (("a", 7), ("b", 7), ("c", 8))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b, c = (built[n].get_weights() for n in "abc")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_building_a_model_leaves_the_global_random_state_alone():
    import random

    from core.models import build_model

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    build_model(TINY_CONFIG, compile=False)
    assert (np.random.random(), random.random()) == expected


@pytest.mark.slow
def test_two_jobs_started_together_with_one_seed_get_the_same_initial_weights(mnist, monkeypatch):
    import dataclasses

    from core import training

    initial: dict[str, list[np.ndarray]] = {}
    build = training.build_model

    def recording_build(config, **kwargs):
        model = build(config, **kwargs)
        initial[threading.current_thread().name] = [w.copy() for w in model.get_weights()]
        return model

    monkeypatch.setattr(training, "build_model", recording_build)
    registry = training.JobRegistry(max_concurrent=2)
    config = dataclasses.replace(TINY_CONFIG, epochs=1, train_samples=256, seed=11)
    jobs = [training.TrainingJob(config, mnist) for _ in range(2)]
    for job in jobs:
        registry.submit(job)
    try:
        assert all(job.wait(timeout=300) for job in jobs)
    finally:
        registry.shutdown()
    assert all(job.state == training.JobState.FINISHED for job in jobs), [j.message for j in jobs]
    a, b = (initial[job.id] for job in jobs)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # Same seed, same shuffling and dropout: the two trained networks are the same too.
    assert jobs[0].test_metrics == pytest.approx(jobs[1].test_metrics, abs=2e-3)
