"""AppTest smoke test of the home page and the shared sidebar."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.browser.support import ROOT, mnist_dir


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    if not mnist_dir().is_dir():
        pytest.skip("MNIST not found")
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir()))
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_EXAMPLES_DIR", str(tmp_path / "examples"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()


def test_home_page_explains_the_app_and_its_status():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Digit Lab"
    text = " ".join(m.value for m in at.markdown)
    # The tutorial's ten steps, numbered, each with where it lives.
    for number in range(1, 11):
        assert f"**{number}. " in text
    assert "Explore › Preprocessing" in text and "Train › Watch" in text
    # Where the data came from, and which model is loaded (the shipped default).
    assert any("Local IDX files" in m.value for m in [*at.markdown, *at.caption])
    assert at.sidebar.selectbox[0].label == "Model"
    assert at.sidebar.selectbox[0].value == "default"


def test_sidebar_run_choice_follows_the_url():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = "does-not-exist"
    at.run()
    assert not at.exception
    # An unknown run falls back to the first one listed rather than failing.
    assert at.sidebar.selectbox[0].value == "default"
