"""Shared fixtures and markers: the real MNIST, one tiny configuration and model, clean state."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from core import memory

# Like the app (ui/__init__.py): set the process up before anything imports TensorFlow.
memory.configure()

from core.models import ConvBlock, ModelConfig  # noqa: E402
from core.runs import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m core ARGS` as a user runs it: from the repository root, with none of the test
    session's MNIST_DIR or DIGITLAB_* settings, output captured as text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_DIR", "DIGITLAB_"))}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


BROWSER_TESTS = ROOT / "tests" / "browser"

# A network that trains on a few hundred digits in a second or two.
TINY_CONFIG = ModelConfig(
    conv_blocks=(ConvBlock(4, 3, 1, True, 0.0),),
    dense_units=0,
    dense_dropout=0.0,
    batch_size=64,
    epochs=2,
    train_samples=512,
    learning_rate=0.01,
    preset="tiny",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser as `browser`, so a new one cannot forget it."""
    for item in items:
        if item.path.resolve().is_relative_to(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """../shared/data/mnist (or $MNIST_DIR); a failure in CI when it is missing."""
    path = Path(os.environ.get("MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"MNIST is missing at {path}: CI must provide ../shared/data/mnist")
        pytest.skip(f"MNIST not found at {path}")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The full MNIST as uint8 arrays, loaded once."""
    from core.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def small(mnist):
    """The first 2,000 training and 1,000 test digits of the real MNIST: enough to train and
    evaluate, quick to predict."""
    from core.data import MnistData

    return MnistData(
        x_train=mnist.x_train[:2000],
        y_train=mnist.y_train[:2000],
        x_test=mnist.x_test[:1000],
        y_test=mnist.y_test[:1000],
        source="local",
        description="first 2,000 / 1,000 MNIST digits",
    )


@pytest.fixture
def registry():
    """A one-slot job registry, shut down after the test with no job thread left running."""
    from core.training import JobRegistry

    reg = JobRegistry(max_concurrent=1)
    yield reg
    reg.shutdown(timeout=60)
    alive = [job.id for job in reg.jobs() if job._thread is not None and job._thread.is_alive()]
    assert not alive, f"job threads still running after shutdown: {alive}"


@pytest.fixture(scope="session")
def tiny_config() -> ModelConfig:
    """TINY_CONFIG, for tests that take it as a fixture (ModelConfig is frozen)."""
    return TINY_CONFIG


@pytest.fixture(scope="module")
def tiny_model(tiny_config):
    """An untrained, compiled TINY_CONFIG network, its optimizer built so that saves are whole."""
    from core.models import build_model

    model = build_model(tiny_config)
    # A never-fitted model saves an unbuilt optimizer, and loading it back warns that the
    # optimizer's variables were skipped; building them first saves what a trained run saves.
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.fixture
def store(tmp_path) -> RunStore:
    """An empty runs folder under tmp_path, without the shipped default model."""
    return RunStore(tmp_path / "runs", default_dir=None)


@pytest.fixture
def app_env(monkeypatch, tmp_path, mnist_dir) -> Iterator[Path]:
    """A clean process-wide state: empty runs and examples folders, fresh caches, no jobs."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_EXAMPLES_DIR", str(tmp_path / "examples"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    from ui import resources

    resources.get_engine().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


# Browser fixtures live in tests/browser/support.py; importing them here gives every module the
# same session-wide server and Chromium (Playwright allows one sync instance per process).
from tests.browser.support import app_server, browser, page  # noqa: E402, F401
