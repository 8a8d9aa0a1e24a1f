"""Every page works on the offline sample when MNIST can be neither found nor downloaded."""

import pytest
import streamlit as st

from core import data
from tests.pages.support import open_page, page_text


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_EXAMPLES_DIR", str(tmp_path / "examples"))

    def no_network():
        raise OSError("no network")

    monkeypatch.setattr(data, "load_download", no_network)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.mark.parametrize(
    "page", ["app.py", "pages/1_Train.py", "pages/2_Explore.py", "pages/3_Draw.py"]
)
def test_pages_run_on_the_sample_and_say_so(offline, page):
    at = open_page(page)
    assert not at.exception
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert "Offline sample" in warning and "the download failed (no network)" in warning
    if page.endswith("Train.py"):
        # The data size cannot exceed the 4,000 training digits of the sample.
        assert at.number_input(key="train_samples").value <= 4000
        assert "4,000 train" in page_text(at)
