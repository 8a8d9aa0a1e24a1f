"""Checkpoints and Resume: a job that dies after some epochs carries on from its last checkpoint
with the same history; a run can be trained further; checkpoints are written whole or not."""

import dataclasses

import numpy as np
import pytest

from core.checkpoints import CheckpointStore
from core.engine import InProcessEngine, JobRequest
from core.runs import RunStore
from core.training import JobState, TrainingJob
from tests.conftest import TINY_CONFIG

pytestmark = pytest.mark.slow
CONFIG = dataclasses.replace(TINY_CONFIG, epochs=3, train_samples=640, checkpoint=True, seed=3)


class ServerDied(RuntimeError):
    pass


def die_after(epochs: int, monkeypatch) -> None:
    """The process 'dies' right after the checkpoint of `epochs` epochs is written."""
    save = TrainingJob.save_checkpoint

    def save_then_die(job, done):
        save(job, done)
        if done == epochs:
            raise ServerDied("the server restarted")

    monkeypatch.setattr(TrainingJob, "save_checkpoint", save_then_die)


def test_resume_after_a_restart_continues_the_curve(mnist, tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs", default_dir=None)
    die_after(2, monkeypatch)
    first = InProcessEngine(mnist, store)
    job = first.submit(JobRequest(CONFIG, owner="abc1"))
    assert job.wait(300) and job.state == JobState.FAILED
    first.shutdown()
    monkeypatch.undo()
    steps = job.steps_per_epoch
    before = job.snapshot()
    assert before.epoch_history["epoch"] == [1.0, 2.0]

    # A new server process: the job is gone, its checkpoint is listed as interrupted.
    second = InProcessEngine(mnist, store)
    (checkpoint,) = second.interrupted("abc1")
    assert checkpoint.id == job.id and checkpoint.epochs_done == 2
    assert second.interrupted("someone-else") == []
    saved_weights = CheckpointStore(store.root).load_model(job.id).get_weights()
    started = {}
    real_model = TrainingJob._model

    def remember(self):
        model = real_model(self)
        started["weights"] = [w.copy() for w in model.get_weights()]
        started["model"] = model  # a finished job lets go of its model: keep it here
        return model

    monkeypatch.setattr(TrainingJob, "_model", remember)
    resumed = second.submit(JobRequest(checkpoint.config, owner="abc1", resume=checkpoint.id))
    # Before it trains, the resumed job already shows the history so far.
    assert resumed.snapshot().epoch_history["epoch"][:2] == [1.0, 2.0]
    assert resumed.wait(300) and resumed.state == JobState.FINISHED, resumed.message
    assert all(np.array_equal(a, b) for a, b in zip(started["weights"], saved_weights, strict=True))
    snap = resumed.snapshot()
    assert snap.epoch_history["epoch"] == [1.0, 2.0, 3.0]
    assert snap.epoch_history["loss"][:2] == pytest.approx(before.epoch_history["loss"])
    assert len(snap.batch_history["step"]) == 3 * steps
    assert snap.batch_history["step"] == [float(s) for s in range(1, 3 * steps + 1)]
    # The optimizer carried on too: its step count continues from the checkpoint's.
    assert int(started["model"].optimizer.iterations.numpy()) == 3 * steps
    run = store.get(resumed.run_name)
    assert run.history["epoch"] == [1.0, 2.0, 3.0] and run.meta["resumed"] is True
    assert run.owner == "abc1" and run.config.epochs == 3
    assert second.interrupted("abc1") == []  # a finished job leaves no checkpoint
    second.shutdown()


def test_a_run_can_be_trained_further(mnist, tmp_path):
    store = RunStore(tmp_path / "runs", default_dir=None)
    engine = InProcessEngine(mnist, store)
    config = dataclasses.replace(CONFIG, epochs=1)
    base = engine.submit(JobRequest(config, owner="abc1"))
    assert base.wait(300) and base.state == JobState.FINISHED
    more = engine.submit(
        JobRequest(dataclasses.replace(config, epochs=2), owner="abc1", start_from=base.run_name)
    )
    assert more.wait(300) and more.state == JobState.FINISHED, more.message
    run = store.get(more.run_name)
    assert run.history["epoch"] == [1.0, 2.0, 3.0] and run.config.epochs == 3
    assert run.meta["continued_from"] == base.run_name
    assert run.history["loss"][0] == pytest.approx(store.get(base.run_name).history["loss"][0])
    engine.shutdown()


def test_a_crash_while_saving_leaves_the_previous_checkpoint_whole(tmp_path, tiny_model):
    checkpoints = CheckpointStore(tmp_path)
    state = {"config": CONFIG.to_dict(), "owner": "abc1", "epochs_done": 1}
    checkpoints.save("job-0123456789", tiny_model, {"step": [1.0]}, {"epoch": [1.0]}, state)

    class Broken:
        def save(self, path):
            path.write_bytes(b"half a model")
            raise OSError(28, "No space left on device")

    with pytest.raises(Exception, match="could not be saved"):
        checkpoints.save("job-0123456789", Broken(), {}, {}, dict(state, epochs_done=2))
    checkpoint = checkpoints.get("job-0123456789")
    assert checkpoint.epochs_done == 1
    assert checkpoints.load_progress("job-0123456789") == ({"step": [1.0]}, {"epoch": [1.0]})
    assert checkpoints.load_model("job-0123456789").count_params() == tiny_model.count_params()
