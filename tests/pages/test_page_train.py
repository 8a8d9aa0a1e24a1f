"""Train page, beyond tests/test_train_page.py: links with bad values, the form across pages,
the probe strip's guesses against the true labels, per-batch curves with a short last batch."""

import threading

import numpy as np
import pytest

from core import train_form
from core.models import PRESETS, ModelConfig
from core.training import JobState, Progress, ProgressCallback, probe_indices
from tests.pages.support import open_page, page_text, run_until

TRAIN = "pages/1_Train.py"


def test_a_link_fills_the_form_and_reproduces_its_config():
    config = ModelConfig.from_query({"preset": "fast", "epochs": "2", "train_samples": "3000"})
    state, notes = train_form.state_from_query(config.to_query())
    assert notes == []
    assert train_form.from_state(state) == config
    # No parameters: the tutorial, exactly.
    state, notes = train_form.state_from_query({})
    assert train_form.from_state(state) == PRESETS["tutorial"] and notes == []


def test_values_a_slider_or_picker_cannot_show_are_replaced_and_named():
    state, notes = train_form.state_from_query(
        {
            "dense_dropout": "5",
            "optimizer": "foo",
            "blocks": "8-3-1-p-2_8-3-1-p-0_8-3-1-n-0_8-3-1-n-0_8-3-1-n-0",
        }
    )
    assert state["train_dense_dropout"] == 0.9 and state["train_optimizer"] == "adam"
    assert state["train_blocks"] == 4 and state["train_b0_dropout"] == 0.9
    text = " ".join(notes)
    for expected in ("dense_dropout=5", "'foo'", "5 conv blocks", "Block 1 dropout 2"):
        assert expected in text, (expected, notes)


def test_a_bad_link_shows_messages_and_nothing_starts(app_env):
    at = open_page(TRAIN, {"dense_dropout": "5", "optimizer": "foo", "seed": "-1"})
    warnings = " ".join(w.value for w in at.warning)
    assert "dense_dropout=5" in warnings and "'foo'" in warnings
    # The seed keeps its bad value, so its range is shown next to it and Train stays off.
    assert any("seed must be between 0 and" in e.value for e in at.error)
    assert at.button(key="train_start").disabled
    at.number_input(key="train_seed").set_value(3).run()
    assert not at.exception and not at.button(key="train_start").disabled
    assert not at.warning  # the notes go once the visitor edits the form


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
    truths = [c.value for c in at.caption if c.value.startswith("true ")]
    guesses = [m.value for m in at.markdown if "guess **" in m.value]
    assert len(truths) == len(guesses) == 12
    labels = mnist.y_test
    expected = labels[probe_indices(labels)]
    assert [int(t.split()[1]) for t in truths] == expected.tolist()
    for guess, truth in zip(guesses, expected, strict=True):
        said = int(guess.split("**")[1])
        assert guess.startswith(":green[" if said == truth else ":red["), guess


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
