"""The worker tests' fixtures: a real redis-server per module, and worker processes."""

from tests.redis_support import redis_server, redis_url, start_worker  # noqa: F401
