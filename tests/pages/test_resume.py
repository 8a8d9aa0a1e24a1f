"""AppTest of Resume and Continue on the Train page."""

import dataclasses

import pytest

from core.engine import InProcessEngine, JobRequest
from core.runs import RunStore
from core.training import JobState, TrainingJob
from tests.conftest import TINY_CONFIG
from tests.pages.support import open_page, page_text, run_until
from ui.visitor import tag_of

pytestmark = pytest.mark.slow
TRAIN = "pages/1_Train.py"
ALICE, BOB = "a" * 32, "b" * 32


def interrupted_job(mnist, runs) -> str:
    """A job of Alice's whose server died after its first epoch's checkpoint."""
    save = TrainingJob.save_checkpoint

    def save_then_die(job, done):
        save(job, done)
        raise RuntimeError("the server restarted")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainingJob, "save_checkpoint", save_then_die)
        engine = InProcessEngine(mnist, RunStore(runs))
        config = dataclasses.replace(TINY_CONFIG, epochs=2, checkpoint=True)
        job = engine.submit(JobRequest(config, owner=tag_of(ALICE)))
        assert job.wait(300) and job.state == JobState.FAILED
        engine.shutdown()
    return job.id


def test_an_interrupted_job_is_listed_for_its_owner_and_resumes(app_env, mnist):
    job_id = interrupted_job(mnist, app_env / "runs")
    bob = open_page(TRAIN, state={"visitor_id": BOB})
    assert "Interrupted" not in page_text(bob)
    alice = open_page(TRAIN, state={"visitor_id": ALICE})
    assert "**Interrupted**: a tiny job, 1 of 2 epochs done" in page_text(alice)
    alice.button(key=f"train_resume_{job_id}").click().run()
    alice = run_until(alice, lambda a: "**Finished** — Test accuracy" in page_text(a))
    assert "Interrupted" not in page_text(alice)
    (run,) = RunStore(app_env / "runs").list_runs(include_default=False)[0]
    assert run.history["epoch"] == [1.0, 2.0] and run.owner == tag_of(ALICE)


def test_continue_training_a_saved_run(app_env):
    at = open_page(
        TRAIN,
        {"blocks": "4-3-1-p-0", "dense_units": "0", "epochs": "1"}
        | {"train_samples": "600", "batch_size": "64"},
        state={"visitor_id": ALICE},
    )
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "**Finished** — Test accuracy" in page_text(a))
    first = RunStore(app_env / "runs").list_runs(include_default=False)[0][0].name
    at.selectbox(key="train_continue_run").set_value(first).run()
    at.number_input(key="train_continue_epochs").set_value(1).run()
    at.button(key="train_continue").click().run()
    store = RunStore(app_env / "runs")
    at = run_until(at, lambda a: len(store.list_runs(include_default=False)[0]) == 2)
    runs = {r.name: r for r in RunStore(app_env / "runs").list_runs(include_default=False)[0]}
    assert len(runs) == 2
    (new,) = [r for name, r in runs.items() if name != first]
    assert new.meta["continued_from"] == first and new.history["epoch"] == [1.0, 2.0]
