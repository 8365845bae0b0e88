"""Resilience fixtures: a fake clock, a fresh process registry per test, both backends, a private redis-server."""
from __future__ import annotations

import pytest

from apps.core.clock import FakeClock as CoreFakeClock
from apps.resilience.backends import backend_loader
from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.runtime import registry
from benchmarks.ratelimit_harness import port
from tests.redis_server import RedisServer

T0 = 1_700_000_040.0  # a whole minute, so minute arithmetic stays readable


class FakeClock(CoreFakeClock):
    """Core's fake clock starting at T0; `now()` is its wall time, as the tests spell it."""

    def __init__(self, now: float = T0) -> None:
        super().__init__(time=now)

    def now(self) -> float:
        return self.time()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def fresh_registry(clock):
    """The process registry on the fake clock and a new memory backend; flushing is done by the test."""
    registry.stop()  # a flusher another test started must not flush this test's breakers behind its back
    saved = (registry.clock, registry._backend, registry.background)
    registry.clock = clock
    registry._backend = MemoryBackend()
    registry.background = False
    registry.fallback = None
    registry.breakers.clear()
    registry.events.clear()
    backend_loader.reset()
    yield registry
    registry.stop()
    registry.clock, registry._backend, registry.background = saved
    registry.fallback = None
    registry.breakers.clear()
    registry.events.clear()
    backend_loader.reset()


@pytest.fixture
def private_redis():
    server = RedisServer(port(101))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shared_redis(redis_url):
    """A client of the project's Redis (db 5 in CI); keys are flushed by the autouse cache clear."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    yield client
    client.close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a service's on-commit work (the snapshot version bump) at once, as a real commit would."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run
