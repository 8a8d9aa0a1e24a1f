"""AppTest of the Explore page with no run at all, tiny trained runs, and an unreadable run.

The views that need no model run on an empty runs folder; the tests that train the two tiny runs
(a few seconds each, once per module) are marked slow.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.data import one_hot, preprocess_images
from core.evaluation import evaluate_probabilities
from core.models import ConvBlock, ModelConfig
from core.runs import MODEL_FILE, RunStore
from core.training import JobRegistry, JobState, TrainingJob
from tests.conftest import ROOT
from ui import resources

PAGE = "pages/2_Explore.py"


def tiny_config(seed: int, samples: int) -> ModelConfig:
    return ModelConfig(
        conv_blocks=(ConvBlock(4, 3, 1, True, 0.0),),
        dense_units=0,
        batch_size=64,
        epochs=1,
        train_samples=samples,
        seed=seed,
        preset="tiny",
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, mnist) -> Path:
    """Two tiny runs (a few seconds each), trained through the real engine."""
    root = tmp_path_factory.mktemp("explore") / "runs"
    store = RunStore(root, default_dir=None)
    registry = JobRegistry(max_concurrent=1)
    for name, seed, samples in (("tiny-b", 1, 300), ("tiny-a", 0, 600)):
        job = TrainingJob(tiny_config(seed, samples), mnist, store=store, run_name=name)
        job.start(registry)
        assert job.wait(120)
        assert job.state == JobState.FINISHED, job.message
    registry.shutdown()
    return root


@pytest.fixture(scope="module")
def reference(runs_dir, mnist):
    """Each tiny run's probabilities and model.evaluate figures, computed outside the page."""
    store = RunStore(runs_dir, default_dir=None)
    x, y = preprocess_images(mnist.x_test), one_hot(mnist.y_test)
    out = {}
    for name in ("tiny-a", "tiny-b"):
        model = store.load_model(name)
        loss, accuracy = model.evaluate(x, y, batch_size=1000, verbose=0)
        out[name] = {
            "probs": model.predict(x, batch_size=1000, verbose=0),
            "loss": loss,
            "accuracy": accuracy,
        }
    return out


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path, mnist_dir):
    """Fresh caches and an empty runs folder (the `trained` fixture puts the tiny runs there)."""
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_EXAMPLES_DIR", str(tmp_path / "examples"))
    # Only the tiny runs: the shipped default model would make every test slower.
    monkeypatch.setattr(
        resources, "get_store", lambda: RunStore(resources.runs_dir(), default_dir=None)
    )
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    resources.get_engine().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def trained(monkeypatch, runs_dir) -> Path:
    """The page reads the two tiny runs."""
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(runs_dir))
    return runs_dir


def open_explore(run: str | None = "tiny-a", view: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if run is not None:
        at.session_state["run"] = run
    at.run()
    at.switch_page(PAGE).run()
    if view is not None:
        at.segmented_control(key="explore_view").set_value(view).run()
    assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def decode(value) -> np.ndarray:
    """Plotly 7 stores numpy arrays as base64 with a dtype and a shape."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return arr.reshape(shape) if shape is not None else arr
    return np.asarray(value)


def captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [e.value for e in at.error] + [c.value for c in at.code]
    return "\n".join(parts)


def test_dataset_view_shows_shapes_samples_and_statistics(mnist):
    at = open_explore(run=None)
    assert "x_train shape: (60000, 28, 28)" in texts(at)
    assert "x_test shape: (10000, 28, 28)" in texts(at)
    labels = mnist.y_train
    grid = [c for c in captions(at) if c.startswith("#")]
    assert len(grid) == 32
    # Every caption is "#index · label" with the true training label.
    for caption in grid:
        index, label = caption[1:].split(" · ")
        assert labels[int(index)] == int(label)
    counts = next(f for f in figures(at) if f["data"][0].get("name") == "train")
    assert decode(counts["data"][0]["y"]).tolist() == np.bincount(labels, minlength=10).tolist()


def test_digit_filter_and_pages(mnist):
    at = open_explore(run=None)
    at.selectbox(key="explore_digit").set_value(7).run()
    at.number_input(key="explore_page").set_value(3).run()
    assert not at.exception
    labels = mnist.y_train
    sevens = np.flatnonzero(labels == 7)
    grid = [c for c in captions(at) if c.startswith("#")]
    assert [int(c[1:].split(" · ")[0]) for c in grid] == sevens[64:96].tolist()
    assert f"of {len(sevens):,} (page 3 of" in texts(at)
    # A new filter starts again at page 1.
    at.selectbox(key="explore_digit").set_value(2).run()
    assert at.number_input(key="explore_page").value == 1
    twos = np.flatnonzero(labels == 2)
    assert [c for c in captions(at) if c.startswith("#")][0] == f"#{twos[0]} · 2"


def test_no_model_at_all_keeps_the_dataset_and_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(
        resources, "get_store", lambda: RunStore(tmp_path / "none", default_dir=None)
    )
    at = open_explore(run=None)
    assert "x_train shape: (60000, 28, 28)" in texts(at)
    assert at.toggle(key="explore_features").disabled
    at.segmented_control(key="explore_view").set_value("Errors").run()
    assert not at.exception
    assert "No trained model yet" in texts(at)
    assert any("Train" in str(link.proto.label) for link in at.get("page_link"))


@pytest.mark.slow
def test_errors_view_matches_model_evaluate_and_an_independent_count(trained, reference, mnist):
    at = open_explore(view="Errors")
    ref = reference["tiny-a"]
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Test accuracy"].rstrip("%")) == pytest.approx(
        ref["accuracy"] * 100, abs=0.006
    )
    assert float(metrics["Test loss"]) == pytest.approx(ref["loss"], abs=2e-4)

    predicted = ref["probs"].argmax(axis=1)
    expected = np.zeros((10, 10), int)
    for true, pred in zip(mnist.y_test, predicted, strict=True):
        expected[true, pred] += 1
    heatmap = next(f for f in figures(at) if f["data"][0]["type"] == "heatmap")
    assert decode(heatmap["data"][0]["z"]).astype(int).tolist() == expected.tolist()

    # Choose a cell with the pickers: the images shown are exactly that cell's, surest first.
    off = expected.copy()
    np.fill_diagonal(off, 0)
    true, pred = (int(v) for v in np.unravel_index(np.argmax(off), off.shape))
    off[true, pred] = 0
    true2, pred2 = (int(v) for v in np.unravel_index(np.argmax(off), off.shape))
    at.selectbox(key="explore_true").set_value(true2).run()
    at.selectbox(key="explore_pred").set_value(pred2).run()
    assert not at.exception
    cell = np.flatnonzero((mnist.y_test == true2) & (predicted == pred2))
    assert f"True {true2}, predicted {pred2}: {len(cell):,} image" in texts(at)
    pattern = re.compile(rf"^#(\d+) p\({pred2}\)=([\d.]+) p\({true2}\)=([\d.]+)$")
    shown = [m for c in captions(at) if (m := pattern.match(c))]
    indices = [int(m.group(1)) for m in shown]
    assert len(indices) == min(24, len(cell))
    assert set(indices) <= set(cell.tolist())
    shown_probs = [float(m.group(2)) for m in shown]
    assert shown_probs == sorted(shown_probs, reverse=True)
    # The probabilities shown are the model's own (model.predict, outside the page).
    assert shown_probs == pytest.approx(ref["probs"][indices, pred2], abs=0.006)
    assert [float(m.group(3)) for m in shown] == pytest.approx(
        ref["probs"][indices, true2], abs=0.006
    )
    assert at.number_input(key="explore_detail").value == indices[0]

    # The per-class table against the same independent count.
    table = at.dataframe[0].value
    recall = np.diag(expected) / expected.sum(axis=1)
    assert np.allclose(table["recall %"].to_numpy(), np.round(recall * 100, 2))


@pytest.mark.slow
def test_empty_cell_and_a_perfect_model_show_empty_states(trained, monkeypatch, mnist):
    perfect = evaluate_probabilities(one_hot(mnist.y_test), mnist.y_test)
    monkeypatch.setattr(resources, "get_evaluation", lambda info: perfect)
    at = open_explore(view="Errors")
    assert "0 of 10,000" in [m.value for m in at.metric][2]
    at.selectbox(key="explore_true").set_value(3).run()
    at.selectbox(key="explore_pred").set_value(5).run()
    assert not at.exception
    assert "No test image of a 3 was answered 5." in texts(at)
    assert "None: the model gets every test digit right." in texts(at)
    at.segmented_control(key="explore_view").set_value("Dataset").run()
    at.segmented_control(key="explore_split").set_value("test").run()
    at.toggle(key="explore_wrong").set_value(True).run()
    assert not at.exception
    assert "No digit matches these filters" in texts(at)


@pytest.mark.slow
def test_two_runs_side_by_side(trained, reference, mnist):
    at = open_explore(view="Errors")
    at.selectbox(key="explore_compare").set_value("tiny-b").run()
    assert not at.exception
    right_a = reference["tiny-a"]["probs"].argmax(1) == mnist.y_test
    right_b = reference["tiny-b"]["probs"].argmax(1) == mnist.y_test
    assert f"tiny-a right, the other wrong: {np.sum(right_a & ~right_b):,}" in texts(at)
    assert f"tiny-b right, the other wrong: {np.sum(right_b & ~right_a):,}" in texts(at)
    chart = next(f for f in figures(at) if f["data"][0].get("name") == "tiny-a")
    per_class = [right_a[mnist.y_test == d].mean() * 100 for d in range(10)]
    assert np.allclose(decode(chart["data"][0]["y"]), per_class, atol=1e-6)


@pytest.mark.slow
def test_unreadable_run_gives_a_clear_message_and_the_page_stays_usable(
    runs_dir, tmp_path, monkeypatch
):
    broken_root = tmp_path / "runs"
    shutil.copytree(runs_dir / "tiny-a", broken_root / "broken")
    (broken_root / "broken" / MODEL_FILE).write_bytes(b"not a keras file")
    (broken_root / "half").mkdir()
    monkeypatch.setenv("DIGITLAB_RUNS_DIR", str(broken_root))
    at = open_explore(run="broken", view="Errors")
    assert at.error and "cannot be loaded" in at.error[0].value
    assert any("could not be read" in w.value for w in at.sidebar.warning)
    at.segmented_control(key="explore_view").set_value("Dataset").run()
    assert not at.exception
    assert "x_train shape: (60000, 28, 28)" in texts(at)


def test_preprocessing_and_augmentation(mnist):
    at = open_explore(run=None, view="Preprocessing")
    at.number_input(key="explore_pre_index").set_value(7).run()
    label = int(mnist.y_train[7])
    code = at.code[0].value
    assert "x = x_train[7]" in code and "(28, 28, 1) uint8" in code
    hot = ", ".join("1." if d == label else "0." for d in range(10))
    assert f"{label} → [{hot}]" in code
    one_hot = at.dataframe[0].value
    assert one_hot.iloc[0].tolist() == [int(d == label) for d in range(10)]
    patches = [f for f in figures(at) if "text" in f["data"][0]]
    raw, scaled = (np.asarray(f["data"][0]["text"], dtype=float) for f in patches)
    assert raw.shape == (8, 8) and raw.max() <= 255
    assert scaled == pytest.approx(np.round(raw / 255, 2), abs=0.006)
    assert not any(c.startswith("draw ") for c in captions(at))
    at.toggle(key="explore_aug").set_value(True).run()
    assert not at.exception
    assert sum(c.startswith("draw ") for c in captions(at)) == 12
    assert at.slider(key="explore_aug_pens").value == 0.0
    at.slider(key="explore_aug_pens").set_value(1.0).run()
    at.slider(key="explore_aug_elastic").set_value(0.5).run()
    assert not at.exception
    assert sum(c.startswith("draw ") for c in captions(at)) == 12


@pytest.mark.slow
def test_maps_wait_for_the_user(trained, mnist):
    at = open_explore()
    maps = [f for f in figures(at) if f["data"][0]["type"] == "scattergl"]
    assert len(maps) == 1
    shown = np.concatenate([decode(trace["customdata"]) for trace in maps[0]["data"]])
    assert len(shown) == 2000
    at.segmented_control(key="explore_map_method").set_value("t-SNE").run()
    assert "press **Compute t-SNE**" in texts(at)
    assert len([f for f in figures(at) if f["data"][0]["type"] == "scattergl"]) == 0
    at.button(key="explore_tsne_go").click().run()
    assert not at.exception
    maps = [f for f in figures(at) if f["data"][0]["type"] == "scattergl"]
    assert len(maps) == 1 and maps[0]["layout"]["title"]["text"] == "t-SNE of raw pixels"
    assert sum(len(decode(t["customdata"])) for t in maps[0]["data"]) == 1000
    at.segmented_control(key="explore_map_method").set_value("PCA").run()
    at.toggle(key="explore_features").set_value(True).run()
    assert not at.exception
    maps = [f for f in figures(at) if f["data"][0]["type"] == "scattergl"]
    assert len(maps) == 2
    assert "learned features of tiny-a" in maps[1]["layout"]["title"]["text"]
