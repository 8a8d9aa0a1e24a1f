"""Shared fixtures: the real MNIST beside the checkout, tiny configurations, clean registries."""

import os
from pathlib import Path

import pytest
import streamlit as st

from core.models import ConvBlock, ModelConfig

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def tiny_config() -> ModelConfig:
    """A network that trains on a few hundred digits in a second or two."""
    return ModelConfig(
        conv_blocks=(ConvBlock(4, 3, 1, True, 0.0),),
        dense_units=0,
        dense_dropout=0.0,
        batch_size=64,
        epochs=2,
        train_samples=512,
        learning_rate=0.01,
        preset="tiny",
    )


@pytest.fixture
def app_env(monkeypatch, tmp_path, mnist_dir):
    """A clean process-wide state: empty runs and examples folders, fresh caches, no jobs."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_EXAMPLES_DIR", str(tmp_path / "examples"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    from ui import resources

    resources.get_registry().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


# Browser fixtures live in tests/e2e.py; importing them here gives every module the same
# session-wide server and Chromium (Playwright allows one sync instance per process).
from tests.browser.support import app_server, browser, page  # noqa: E402, F401
