"""Many visitors on one deployment (AppTest): whose jobs, runs and drawings are whose, the
default model, and the operator's admin token."""

import numpy as np
import pytest

from core.models import ConvBlock, ModelConfig, build_model
from core.runs import ExampleStore, RunStore
from tests.pages.support import open_page, page_text, run_until
from ui.visitor import tag_of

TRAIN, DRAW = "pages/1_Train.py", "pages/3_Draw.py"
ALICE, BOB = "a" * 32, "b" * 32
SMALL = {"blocks": "4-3-1-p-0", "dense_units": "0", "batch_size": "64", "learning_rate": "0.01"}


def as_visitor(page: str, visitor_id: str, query: dict | None = None):
    return open_page(page, query, state={"visitor_id": visitor_id})


def save(store: RunStore, name: str, owner: str | None, status: str = "finished", acc=0.9):
    cfg = ModelConfig(conv_blocks=(ConvBlock(2, 3, 1, True, 0.0),), dense_units=0)
    meta = {"status": status} | ({"owner": owner} if owner else {})
    return store.save_run(build_model(cfg), cfg, {"epoch": [1]}, {"test_accuracy": acc}, meta, name)


def test_a_visitors_default_model_is_their_latest_finished_run_or_the_shipped_one(app_env):
    store = RunStore(app_env / "runs")
    save(store, "alices-best", tag_of(ALICE))
    save(store, "alices-stopped", tag_of(ALICE), status="stopped", acc=0.74)
    at = as_visitor("app.py", BOB)
    assert at.selectbox[0].value == "default"  # never someone else's run
    labels = at.selectbox[0].options
    assert any("alices-best" in o and "visitor " + tag_of(ALICE)[:4] in o for o in labels)
    at = as_visitor("app.py", ALICE)
    assert at.selectbox[0].value == "alices-best"  # the latest finished, not the stopped one


def test_only_the_owner_may_rename_or_delete_a_run(app_env):
    store = RunStore(app_env / "runs")
    save(store, "alices", tag_of(ALICE))
    at = as_visitor(TRAIN, BOB)
    table = at.dataframe[-1].value
    assert table.set_index("name").loc["alices", "owner"] == f"visitor {tag_of(ALICE)[:4]}"
    at.selectbox(key="train_manage_run").set_value("alices").run()
    assert at.button(key="train_rename").disabled and at.button(key="train_delete").disabled
    assert at.checkbox(key="train_sure_alices").disabled
    at = as_visitor(TRAIN, ALICE)
    at.selectbox(key="train_manage_run").set_value("alices").run()
    at.checkbox(key="train_sure_alices").check().run()
    at.button(key="train_delete").click().run()
    assert not (app_env / "runs" / "alices").exists()


def test_the_admin_token_unlocks_moderation(app_env, monkeypatch):
    monkeypatch.setenv("DIGITLAB_ADMIN_TOKEN", "s3cret-token")
    store = RunStore(app_env / "runs")
    save(store, "alices", tag_of(ALICE))
    save(store, "from-the-cli", None)
    at = as_visitor(TRAIN, BOB)
    at.selectbox(key="train_manage_run").set_value("from-the-cli").run()
    assert at.button(key="train_delete").disabled  # the deployment's run: the operator's
    at.text_input(key="visitor_token").input("wrong").run()
    assert "That is not the admin token" in page_text(at)
    at.text_input(key="visitor_token").input("s3cret-token").run()
    assert "Moderation is on" in page_text(at)
    at.selectbox(key="train_manage_run").set_value("alices").run()
    at.checkbox(key="train_sure_alices").check().run()
    at.button(key="train_delete").click().run()
    assert not (app_env / "runs" / "alices").exists()


@pytest.mark.slow
def test_another_visitor_cannot_stop_a_job_and_sees_only_its_place(app_env):
    alice = as_visitor(TRAIN, ALICE, SMALL | {"epochs": "30", "train_samples": "3000"})
    alice.button(key="train_start").click().run()
    alice = run_until(alice, lambda a: "Running" in page_text(a))
    bob = as_visitor(TRAIN, BOB, SMALL | {"epochs": "1", "train_samples": "600"})
    text = page_text(bob)
    assert "training now: another visitor's" in text
    assert tag_of(ALICE)[:4] not in text  # whose it is stays hidden
    assert not bob.get("button") or all(b.key != "train_stop" for b in bob.button)
    # Bob queues his own job: it waits behind Alice's, and he can stop only his.
    bob.button(key="train_start").click().run()
    bob = run_until(bob, lambda a: "Place in the queue: **1**" in page_text(a))
    assert not bob.button(key="train_stop").disabled
    assert "#1 in line: **yours**" in page_text(bob)
    # Alice, reloading (a new session of the same browser), finds her own job, not Bob's.
    alice = as_visitor(TRAIN, ALICE)
    assert "Running" in page_text(alice) and not alice.button(key="train_stop").disabled
    alice.button(key="train_stop").click().run()
    alice = run_until(alice, lambda a: "keeping what it learned" in page_text(a))
    bob = run_until(bob, lambda a: "**Finished**" in page_text(a))
    runs = RunStore(app_env / "runs").list_runs(include_default=False)[0]
    assert {r.owner for r in runs} == {tag_of(ALICE), tag_of(BOB)}


def test_labelled_drawings_are_each_visitors_own(app_env):
    root = app_env / "examples"
    ExampleStore(root, tag_of(ALICE)).add(np.ones((28, 28), np.uint8), 4)
    ExampleStore(root, tag_of(ALICE)).add(np.ones((28, 28), np.uint8), 7)
    at = as_visitor(TRAIN, BOB)
    assert "Add my 0 labelled drawing(s)" in at.checkbox(key="train_use_examples").label
    at = as_visitor(TRAIN, ALICE)
    assert "Add my 2 labelled drawing(s)" in at.checkbox(key="train_use_examples").label
    at = as_visitor(DRAW, ALICE)
    assert "Your labelled drawings (2)" in [e.label for e in at.expander]
    deletes = [b for b in at.button if b.key and b.key.startswith("drawings_delete_")]
    assert len(deletes) == 2
    deletes[0].click().run()
    assert ExampleStore(root, tag_of(ALICE)).count() == 1
    assert "Your labelled drawings (1)" in [e.label for e in at.expander]
