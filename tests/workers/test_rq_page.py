"""The Train page with DIGITLAB_REDIS_URL set: jobs train on a worker process, the page shows
them exactly as in-process jobs, and an unreachable Redis is a clear message, not a traceback."""

import pytest

from core.training import probe_indices
from tests.pages.support import live_batches, open_page, page_text, probe_cells, run_until
from tests.redis_support import wait_for

TRAIN = "pages/1_Train.py"
SETUP = {
    "blocks": "4-3-1-p-0",
    "dense_units": "0",
    "batch_size": "32",
    "epochs": "3",
    "train_samples": "20000",
    "learning_rate": "0.01",
}


def progress_text(at) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


@pytest.fixture
def rq_app(app_env, monkeypatch, redis_url):
    monkeypatch.setenv("DIGITLAB_REDIS_URL", redis_url)
    return app_env


@pytest.mark.slow
def test_progress_reaches_the_page_from_a_worker_and_the_run_is_listed(
    rq_app, redis_url, start_worker, mnist
):
    at = open_page(TRAIN, SETUP)
    at.button(key="train_start").click().run()
    # No worker yet: the job waits at its place, and the page says why.
    at = run_until(at, lambda a: "Place in the queue: **1**" in page_text(a), timeout=30)
    at = run_until(at, lambda a: "none is listening" in page_text(a), timeout=30)
    start_worker(redis_url, "w-page")
    at = run_until(at, lambda a: "(worker w-page)" in page_text(a) and live_batches(a) > 0)
    assert "**Running**" in page_text(at) and "images/s" in progress_text(at)
    seen = live_batches(at)
    at = run_until(at, lambda a: live_batches(a) > seen or "**Finished**" in page_text(a))
    at = run_until(at, lambda a: "**Finished** — Test accuracy" in page_text(a), timeout=300)
    text = page_text(at)
    expected = mnist.y_test[probe_indices(mnist.y_test)]
    assert [c[3] for c in probe_cells(at)] == expected.tolist()
    assert "after epoch 3" in text and "Test accuracy" in [m.label for m in at.metric]
    table = at.dataframe[-1].value
    new = table[table["name"] != "default"]
    assert new["status"].tolist() == ["finished"] and new["epochs"].tolist() == [3]
    assert [p.name for p in (rq_app / "runs").iterdir()] == new["name"].tolist()


@pytest.mark.slow
def test_stop_on_the_page_keeps_what_was_learned(rq_app, redis_url, start_worker):
    start_worker(redis_url, "w-stop-page")
    at = open_page(TRAIN, dict(SETUP, epochs="30"))
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "Epoch 1/30" in progress_text(a))
    at.button(key="train_stop").click().run()
    at = run_until(at, lambda a: "keeping what it learned" in page_text(a), timeout=180)
    table = at.dataframe[-1].value
    stopped = table[table["name"] != "default"]
    assert stopped["status"].tolist() == ["stopped"] and stopped["epochs"].iloc[0] < 30


def test_redis_down_is_a_clear_message_on_the_page(rq_app, redis_server):
    at = open_page(TRAIN, SETUP)
    assert not at.button(key="train_start").disabled
    redis_server.stop()
    from ui import resources

    wait_for(resources.get_engine().problem, 15, "the engine to notice")
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert f"Redis at {redis_server.url}" in errors and "cannot be reached" in errors
    assert at.button(key="train_start").disabled
    redis_server.start()
    wait_for(lambda: resources.get_engine().problem() is None, 30, "the engine to reconnect")
    at.run()
    assert not at.error and not at.button(key="train_start").disabled


def test_a_bad_url_is_a_clear_message_on_the_page(app_env, monkeypatch):
    monkeypatch.setenv("DIGITLAB_REDIS_URL", "localhost:6379")
    at = open_page(TRAIN, SETUP)
    errors = " ".join(e.value for e in at.error)
    assert "DIGITLAB_REDIS_URL 'localhost:6379' is not a Redis URL" in errors
    assert at.button(key="train_start").disabled
    monkeypatch.delenv("DIGITLAB_REDIS_URL")  # app_env's teardown shuts the engine down
