"""Train page, beyond tests/test_train_page.py: links with bad values, the form across pages,
the probe strip's guesses against the true labels, per-batch curves with a short last batch."""

import threading

import numpy as np
import pytest

from core import train_form
from core.models import PRESETS, ModelConfig
from core.training import JobState, Progress, ProgressCallback, probe_indices
from tests.pages.support import open_page, page_text, probe_cells, run_until

TRAIN = "pages/1_Train.py"


def test_a_link_fills_the_form_and_reproduces_its_config():
    config = ModelConfig.from_query({"preset": "fast", "epochs": "2", "train_samples": "3000"})
    link = train_form.read_link(config.to_query(), 60_000)
    assert link.notes == [] and link.overrides == {}
    assert train_form.from_state(link.state) == config
    # No parameters: the tutorial, exactly.
    link = train_form.read_link({}, 60_000)
    assert train_form.from_state(link.state) == PRESETS["tutorial"] and link.notes == []


def test_values_no_widget_can_show_stay_the_links_and_are_named():
    params = {
        "dense_dropout": "5",
        "optimizer": "foo",
        "learning_rate": "10",
        "blocks": "8-3-1-p-2_8-3-1-p-0_8-3-1-n-0_8-3-1-n-0_8-3-1-n-0",
        "train_samples": "70000",
    }
    link = train_form.read_link(params, 60_000)
    # Every widget holds a value it can show...
    assert link.state["train_dense_dropout"] == 0.5 and link.state["train_optimizer"] == "adam"
    assert link.state["train_learning_rate"] == 0.001 and link.state["train_blocks"] == 1
    # ...and the link's own values are kept, never rewritten, for the errors to name.
    config = train_form.from_state(link.state, link.overrides)
    assert config.dense_dropout == 5.0 and config.learning_rate == 10.0
    assert len(config.conv_blocks) == 5 and config.train_samples == 70_000
    errors = config.errors(60_000) | train_form.override_errors(link.overrides)
    assert "between 0 and 0.9 (got 5)" in errors["dense_dropout"]
    assert "between 1e-05 and 1 (got 10)" in errors["learning_rate"]
    assert "'foo'" in errors["optimizer"] and "adam, sgd, rmsprop" in errors["optimizer"]
    assert "1 to 4 blocks (got 5)" in errors["conv_blocks"]
    assert "between 100 and 60000" in errors["train_samples"]
    # The address bar keeps what the link said.
    query = config.to_query()
    assert query["learning_rate"] == "10.0" and query["optimizer"] == "foo"
    assert query["blocks"] == params["blocks"].replace("-2_", "-2_")
    # Changing a field drops the link's value for it.
    train_form.forget_override(link.overrides, "train_learning_rate")
    assert train_form.from_state(link.state, link.overrides).learning_rate == 0.001


def test_a_bad_link_shows_messages_and_nothing_starts(app_env):
    at = open_page(TRAIN, {"dense_dropout": "5", "optimizer": "foo", "seed": "-1"})
    errors = " ".join(e.value for e in at.error)
    assert "dense_dropout must be between 0 and 0.9 (got 5)" in errors
    assert "optimizer='foo' in the link is not readable" in errors
    assert "seed must be between 0 and" in errors
    assert at.button(key="train_start").disabled
    at.number_input(key="train_seed").set_value(3).run()
    assert not at.exception and at.button(key="train_start").disabled
    assert "seed must be" not in " ".join(e.value for e in at.error)
    at.button(key="train_use_shown").click().run()
    assert not at.exception and not at.button(key="train_start").disabled
    assert not at.warning  # the link's notes go once the visitor takes the values shown
    assert at.query_params["optimizer"] == "adam" and at.query_params["seed"] == "3"


def test_the_form_survives_a_visit_to_another_page(app_env):
    at = open_page(TRAIN)
    at.segmented_control(key="train_preset").set_value("fast").run()
    at.number_input(key="train_epochs").set_value(7).run()
    at.switch_page("pages/3_Draw.py").run()
    # The sidebar's links carry no configuration, only the chosen run.
    for k in [k for k in at.query_params if k != "run"]:
        del at.query_params[k]
    at.switch_page(TRAIN).run()
    assert not at.exception
    assert at.number_input(key="train_b0_filters").value == 16
    assert at.number_input(key="train_epochs").value == 7
    assert at.query_params["epochs"] == "7"


def test_probe_strip_shows_each_guess_against_the_true_label(app_env, mnist):
    tiny = "4-3-1-p-0"
    at = open_page(
        TRAIN,
        {"blocks": tiny, "dense_units": "0", "batch_size": "64", "epochs": "1"}
        | {"train_samples": "600", "learning_rate": "0.01"},
    )
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "**Finished** — Test accuracy" in page_text(a))
    text = page_text(at)
    assert "after epoch 1" in text
    # One HTML element for the strip: per digit, its guess (coloured right/wrong) and its truth.
    cells = probe_cells(at)
    assert len(cells) == 12
    labels = mnist.y_test
    expected = labels[probe_indices(labels)]
    assert [c[3] for c in cells] == expected.tolist()
    for verdict, guess, _, truth in cells:
        assert verdict == ("right" if guess == truth else "wrong"), (verdict, guess, truth)
    strip = next(h.proto.body for h in at.get("html") if "probe-strip" in h.proto.body)
    assert 'alt="test digit' in strip and "data:image/png;base64," in strip


def test_probe_guess():
    p = np.full(10, 0.02, dtype=np.float32)
    p[7] = 0.82
    guess, prob, right = train_form.probe_guess(p, 7)
    assert (guess, right) == (7, True) and abs(prob - 0.82) < 1e-6
    assert train_form.probe_guess(p, 1)[2] is False


def test_a_short_last_batch_is_charted_at_its_own_loss():
    # Keras logs sample-weighted running means: 256 + 256 + a last batch of 16 images.
    own, sizes = [2.0, 1.0, 0.1], [256, 256, 16]
    progress = Progress(epochs=1, steps_per_epoch=3)
    seen = total = 0.0
    for k, (loss, n) in enumerate(zip(own, sizes, strict=True), start=1):
        seen, total = seen + n, total + loss * n
        progress.record_batch(1, k, k, n, {"loss": total / seen})
    snap = progress.snapshot(JobState.FINISHED, "")
    assert snap.batch_history["loss"] == pytest.approx(own)
    callback = ProgressCallback(progress, threading.Event(), 256, None, True, 3, samples=528)
    assert [callback._batch_images(b) for b in range(3)] == sizes


def test_progress_line_has_no_empty_part():
    snap = Progress(epochs=2, steps_per_epoch=10).snapshot(JobState.FINISHED, "")
    text = train_form.progress_text(snap)
    assert text.startswith("Epoch 0/2 · batch 0/10") and not text.endswith("·")
    assert "left" not in text
