"""What a job records beyond the curves: partial epochs, early stopping, the per-batch record."""

import dataclasses
import threading

import keras
import numpy as np
import pytest

from core import records, training
from core.training import JobState, Progress, TrainingJob
from tests.conftest import TINY_CONFIG
from tests.unit.test_training import make_callback, run_epochs

DEADLINE = 120.0


def test_a_stop_mid_epoch_records_the_epochs_actually_trained():
    progress = Progress(epochs=3, steps_per_epoch=4)
    stop = threading.Event()
    callback = make_callback(progress, stop=stop, steps=4)
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for batch in range(4):
            if (epoch, batch) == (1, 1):
                stop.set()  # the visitor presses Stop during batch 2 of epoch 2
            callback.on_train_batch_end(batch, {"loss": 1.0})
            if callback.model.stop_training:
                break
        callback.on_epoch_end(epoch, {"loss": 1.0})  # Keras ends the cut epoch too
        if callback.model.stop_training:
            break
    snap = progress.snapshot(JobState.STOPPED, "")
    assert snap.epoch_history["epoch"] == [1, 2]
    assert snap.epoch_history["epochs_done"] == [1.0, 1.5]  # 6 batches of 4 per epoch
    assert snap.epochs_done == 1.5
    whole = make_callback(Progress(epochs=2, steps_per_epoch=3))
    run_epochs(whole, [[1.0] * 3, [1.0] * 3], [{"loss": 1.0}] * 2)
    assert whole.progress.snapshot(JobState.FINISHED, "").epoch_history["epochs_done"] == [1, 2]


def drive_early_stopping(val_losses, patience=2, restore=True):
    """Keras's own EarlyStopping fed made-up validation losses, as keras's tests do."""
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=restore
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, value in enumerate(val_losses):
        stopper.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    stopper.on_train_end()
    return stopper


def test_early_stopping_record_and_sentence_by_hand():
    # Best at epoch 2 (0.5); epochs 3 and 4 do not improve; patience 2 fires after epoch 4.
    stopper = drive_early_stopping([1.0, 0.5, 0.6, 0.7, 0.2, 0.1])
    record = training.early_stopping_record([object(), stopper])
    assert record == {
        "monitor": "val_loss",
        "patience": 2,
        "stopped_epoch": 4,
        "best_epoch": 2,
        "best_value": 0.5,
        "restored": True,
    }
    text = training.early_stopping_text(record, 10, 4)
    assert "after epoch 4 of 10" in text and "validation loss" in text
    assert "weights of epoch 2" in text
    # It did not fire, but the best weights (epoch 2 of 3) were put back: that is said too.
    quiet = training.early_stopping_record([drive_early_stopping([1.0, 0.5, 0.6])])
    assert (quiet["stopped_epoch"], quiet["best_epoch"]) == (0, 2)
    assert training.early_stopping_text(quiet, 3, 3).startswith("Early stopping did not fire")
    # The last epoch was the best, or there was no early stopping: nothing to say.
    best_last = training.early_stopping_record([drive_early_stopping([1.0, 0.5])])
    assert training.early_stopping_text(best_last, 2, 2) == ""
    assert training.early_stopping_record([object()]) is None
    assert training.early_stopping_text(None, 3, 3) == ""


class WeightsAtEpochEnd(keras.callbacks.Callback):
    """Keeps a copy of the weights after every epoch."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


@pytest.mark.slow
def test_a_run_keeps_its_per_batch_curve_and_early_stopping(small, registry, store, monkeypatch):
    recorder = WeightsAtEpochEnd()

    def never_improves(config):
        # Nothing counts as an improvement after the first epoch: fires after epoch 2, keeps 1.
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=1, min_delta=1e9, restore_best_weights=True
        )
        return [recorder, stopper]

    monkeypatch.setattr(training, "make_callbacks", never_improves)
    config = dataclasses.replace(
        TINY_CONFIG, epochs=6, early_stopping=True, validation_split=0.2, patience=1
    )
    job = TrainingJob(config, small, store=store).start(registry)
    assert job.wait(DEADLINE)
    snap = job.snapshot()
    assert snap.state == JobState.FINISHED, snap.message
    assert snap.epoch_history["epoch"] == [1, 2]  # 2 of the 6 planned
    assert snap.early_stopping["stopped_epoch"] == 2 and snap.early_stopping["best_epoch"] == 1
    assert "Early stopping ended training after epoch 2 of 6" in snap.message
    info = store.get(job.run_name)
    assert info.meta["early_stopping"] == snap.early_stopping
    assert info.meta["epochs_trained"] == 2.0
    # The per-batch curve is saved whole (2 x 7 batches) beside the per-epoch lists.
    per_batch = records.read_batches(info.history)
    assert per_batch["step"] == snap.batch_history["step"] == list(range(1, 15))
    assert per_batch["loss"] == pytest.approx(snap.batch_history["loss"])
    assert per_batch["epochs_done"][-1] == 2.0
    assert info.history["epoch"] == [1, 2]
    # The weights saved are epoch 1's, restored by early stopping, not those after epoch 2.
    saved = store.load_model(job.run_name).get_weights()
    first, second = recorder.weights
    assert all(np.array_equal(a, b) for a, b in zip(saved, first, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(saved, second, strict=True))
