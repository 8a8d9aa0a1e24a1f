"""AppTest of issue 12's charts and records on the pages: the learning-rate chart, log-scale x,
early stopping in the status and on the chart, the exports, your own model on Explore and Draw,
and Explore's confusion matrices side by side."""

import base64
import json

import keras
import numpy as np
import pytest
from keras import layers

from core import records, training
from core.data import preprocess_images
from core.runs import RunStore
from tests.pages.support import open_page, page_text, run_until
from tests.pages.test_page_draw import canvas, canvas_of  # noqa: F401 - the fixture
from ui.visitor import tag_of

TRAIN, EXPLORE, DRAW = "pages/1_Train.py", "pages/2_Explore.py", "pages/3_Draw.py"
TINY = {"blocks": "4-3-1-p-0", "dense_units": "0", "batch_size": "64", "learning_rate": "0.01"}


def chart(at, key: str) -> dict:
    """The Plotly spec of the chart with this key."""
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert found, f"no chart {key}"
    return json.loads(found[0].proto.spec)


def values(v) -> np.ndarray:
    """Plotly 7 sends numpy arrays as base64 with a dtype (and a shape)."""
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        shape = v.get("shape")
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return arr.reshape(shape) if shape else arr
    return np.asarray(v, dtype=float)


@pytest.mark.slow
def test_train_shows_learning_rate_log_x_early_stopping_and_exports(app_env, monkeypatch):
    def never_improves(config):
        # Nothing counts as an improvement after the first epoch: fires after epoch 2 of 4.
        return [
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=1, min_delta=1e9, restore_best_weights=True
            )
        ]

    monkeypatch.setattr(training, "make_callbacks", never_improves)
    at = open_page(
        TRAIN,
        TINY
        | {"epochs": "4", "train_samples": "600", "validation_split": "0.2"}
        | {"early_stopping": "1", "patience": "1"},
    )
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "**Finished** — Test accuracy" in page_text(a))
    text = page_text(at)
    assert "Early stopping ended training after epoch 2 of 4" in text
    assert "weights of epoch 1, its best, were kept" in text
    bar = at.get("progress")[0].proto.text
    assert "Epoch 2/4" in bar and "early stopping ended it after epoch 2" in bar
    loss = chart(at, "train_chart_loss")
    names = [t.get("name") for t in loss["data"]]
    assert "best epoch 1, weights kept" in names and "early stopping fired after epoch 2" in names
    # The learning rate of every batch: 2 epochs of 8 batches at the configured 0.01.
    lr = chart(at, "train_chart_lr")["data"][0]
    assert np.allclose(values(lr["y"]), 0.01) and len(values(lr["y"])) == 16
    assert loss["layout"]["xaxis"].get("type") != "log"
    at.toggle(key="train_log_x").set_value(True).run()
    for key in ("train_chart_loss", "train_chart_accuracy", "train_chart_lr"):
        assert chart(at, key)["layout"]["xaxis"]["type"] == "log", key
    # The runs table and the run's history can be downloaded.
    keys = {b.proto.id.rsplit("-", 1)[-1] for b in at.get("download_button")}
    for key in ("table_csv", "table_json", "history_csv", "batches_csv", "history_json"):
        assert any(k.endswith(key) for k in keys), key
    # Overlay the new run and the shipped default, both saved with their per-batch curves (a run
    # saved without one is drawn per epoch: tests/unit/test_charts.py).
    (run,) = RunStore(app_env / "runs", default_dir=None).list_runs()[0]
    at.session_state["train_runs_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    at.segmented_control(key="train_overlay_kind").set_value("Per batch, smoothed").run()
    at.radio(key="train_overlay_metric").set_value("loss").run()
    traces = {t["name"]: t for t in chart(at, "train_overlay")["data"]}
    assert "default (per batch, smoothed)" in traces
    smoothed = traces[f"{run.name} (per batch, smoothed)"]
    saved = records.read_batches(run.history)
    assert np.allclose(values(smoothed["x"]), saved["epochs_done"])
    assert np.allclose(values(smoothed["y"]), hand_ema(saved["loss"], 0.6), rtol=1e-6)
    at.radio(key="train_overlay_metric").set_value("learning_rate").run()
    at.toggle(key="train_overlay_log_x").set_value(True).run()
    overlay = chart(at, "train_overlay")
    assert overlay["layout"]["xaxis"]["type"] == "log"
    lr = next(t for t in overlay["data"] if t["name"].startswith(run.name))
    assert np.allclose(values(lr["y"]), 0.01)
    assert not at.exception


def hand_ema(values, weight):
    """TensorBoard's debiased moving average, written out again."""
    out, last = [], 0.0
    for k, v in enumerate(values, start=1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**k))
    return out


def good_model(mnist) -> keras.Model:
    """A small dense model, trained a little, as a visitor might bring one."""
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(inputs)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(preprocess_images(mnist.x_train[:3000]), mnist.y_train[:3000], epochs=1, verbose=0)
    return model


def keras_file(model, tmp_path, name) -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


@pytest.mark.slow
def test_your_own_model_on_explore_then_compared_side_by_side(app_env, mnist):
    model = good_model(mnist)
    data = keras_file(model, app_env, "mine.keras")
    at = open_page(EXPLORE)
    at.segmented_control(key="explore_view").set_value("Errors").run()
    assert not at.button(key="explore_model_add").value
    at.file_uploader(key="explore_model_file").set_value(("mine.keras", data, "application/zip"))
    at.run()
    at.button(key="explore_model_add").click().run()
    assert not at.exception, at.exception
    # The upload is now the chosen model, and one of this visitor's runs.
    assert at.sidebar.selectbox[0].value == "upload-mine"
    assert "upload-mine" in " ".join(s.value for s in at.sidebar.success)
    info = RunStore(app_env / "runs").get("upload-mine")
    assert info.meta["uploaded"] and info.owner == tag_of(at.session_state["visitor_id"])
    probs = model.predict(preprocess_images(mnist.x_test), verbose=0)
    accuracy = np.mean(probs.argmax(1) == mnist.y_test)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test accuracy"] == f"{accuracy:.2%}"
    # Compared with the shipped default model: both confusion matrices, counted here by hand.
    at.selectbox(key="explore_compare").set_value("default").run()
    at.toggle(key="explore_compare_cm_diag").set_value(True).run()
    assert not at.exception, at.exception
    mine = values(chart(at, "explore_compare_cm_a")["data"][0]["z"])
    theirs = chart(at, "explore_compare_cm_b")
    default = RunStore(app_env / "runs").load_model("default")
    other = default.predict(preprocess_images(mnist.x_test), verbose=0).argmax(1)
    hand, counted = np.zeros((10, 10)), np.zeros((10, 10))
    np.add.at(hand, (mnist.y_test, probs.argmax(1)), 1)
    np.add.at(counted, (mnist.y_test, other), 1)
    assert np.array_equal(mine.reshape(10, 10), hand)
    assert np.array_equal(values(theirs["data"][0]["z"]).reshape(10, 10), counted)
    # One colour scale: its top is the largest cell of either matrix.
    zmax = chart(at, "explore_compare_cm_a")["data"][0]["zmax"]
    assert zmax == theirs["data"][0]["zmax"] == max(hand.max(), counted.max())


@pytest.mark.slow
def test_a_lambda_model_on_draw_is_refused_and_nothing_runs(app_env, canvas, tmp_path):  # noqa: F811
    marker = tmp_path / "the-lambda-ran"
    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inputs = keras.Input((28, 28, 1))
    hidden = layers.Lambda(eval(code))(inputs)  # noqa: S307 - the hostile model under test
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(hidden)))
    data = keras_file(model, tmp_path, "lambda.keras")
    marker.unlink()
    at = open_page(DRAW)
    at.file_uploader(key="draw_model_file").set_value(("lambda.keras", data, "application/zip"))
    at.run()
    at.button(key="draw_model_add").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "Lambda layer" in errors and "never runs code" in errors
    assert not marker.exists()
    assert not (app_env / "runs").exists() or not any((app_env / "runs").iterdir())
    assert at.sidebar.selectbox[0].value == "default"  # the chosen model did not change


def test_an_epoch_cut_short_is_named_as_such_in_the_status_and_the_probe_strip():
    def script():
        import types

        import numpy as np

        from core.data import MnistData
        from core.training import JobState, ProgressSnapshot
        from ui import job_panel

        digits = np.zeros((2, 28, 28), np.uint8)
        data = MnistData(digits, np.array([7, 2]), digits, np.array([7, 2]), "sample", "two")
        snap = ProgressSnapshot(
            JobState.STOPPED,
            "Ended early, keeping what it learned.",
            epoch=2,
            epochs=3,
            batch=2,
            steps_per_epoch=4,
            batch_history={"step": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
            epoch_history={"epoch": [1.0, 2.0], "epochs_done": [1.0, 1.5]},
            elapsed=1.0,
            images_per_second=10.0,
            eta_seconds=None,
            probe_predictions=[np.full((2, 10), 0.1, np.float32)] * 3,
        )
        job = types.SimpleNamespace(probe_index=np.array([0, 1]), probe_labels=np.array([7, 2]))
        job_panel._status(snap)
        job_panel._probes(job, snap, data)

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "stopped after 1.50 epochs" in at.get("progress")[0].proto.text
    text = page_text(at)
    assert "guesses for a dozen test digits, when stopped, after 1.50 epochs" in text
    assert "after epoch 2" not in text
