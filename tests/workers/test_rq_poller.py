"""The web process's RQ poller against a real redis-server: it reads at its own pace, and a Stop
wakes it once, not for ever."""

import time

from core.engine import JobRequest
from core.rq_engine import IDLE_POLL_SECONDS, POLL_SECONDS, RQEngine
from tests.conftest import TINY_CONFIG
from tests.redis_support import wait_for


def commands(client) -> int:
    return int(client.info("stats")["total_commands_processed"])


def commands_during(client, seconds: float) -> int:
    before = commands(client)
    time.sleep(seconds)  # the interval measured, not a wait for something to happen
    return commands(client) - before - 1  # less the INFO that read it


def test_the_poller_keeps_its_pace_idle_busy_and_after_a_stop(redis_url, redis_server, store):
    client = redis_server.client()
    start = commands(client)
    engine = RQEngine(redis_url, store)
    try:
        wait_for(lambda: commands(client) > start + 3, 15, "the first poll")
        # Idle: one read every IDLE_POLL_SECONDS (a handful of commands each), not a spin.
        idle = commands_during(client, 3 * IDLE_POLL_SECONDS)
        assert idle <= 4 * 10, idle
        # A queued job (no worker listens): one read every POLL_SECONDS.
        job = engine.submit(JobRequest(TINY_CONFIG, owner="me"))
        wait_for(lambda: job.snapshot().queue_position == 1, 15, "the job in the queue")
        busy = commands_during(client, 10 * POLL_SECONDS)
        assert busy <= 11 * 25, busy
        # Stop wakes the poller to send the flag and read what follows; then the pace is back.
        job.stop()
        wait_for(lambda: job.state.done or job.snapshot().message, 15, "the stop")
        after = commands_during(client, 10 * POLL_SECONDS)
        assert after <= 11 * 25, after
    finally:
        engine.shutdown()
