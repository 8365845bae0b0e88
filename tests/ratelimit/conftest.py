"""Rate-limit fixtures: a fake clock, both backends, and a private redis-server that tests may stop."""
from __future__ import annotations

import pytest

from apps.core.clock import FakeClock as CoreFakeClock
from apps.ratelimit import stats
from apps.ratelimit.backends import backend_loader
from benchmarks.ratelimit_harness import port
from tests.redis_server import RedisServer

T0_US = 28_333_334 * 60_000_000  # a whole minute (2023-11-14 22:14 UTC): window arithmetic stays readable


class FakeClock(CoreFakeClock):
    """Core's fake clock, read as microseconds by calling it, moved in seconds or microseconds."""

    def __init__(self, now_us: int = T0_US) -> None:
        super().__init__(time=now_us / 1_000_000)

    def __call__(self) -> int:
        return self.time_us()

    def advance(self, seconds: float = 0, *, s: float = 0, us: int = 0) -> None:
        super().advance(seconds + s + us / 1_000_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_ratelimit_state():
    """A new backend (memory state included) and no pending stats from another test."""
    backend_loader.reset()
    stats.stats_counters.take()
    yield
    backend_loader.reset()
    stats.stats_counters.take()


@pytest.fixture
def own_redis():
    server = RedisServer(port(10))
    server.start()
    try:
        yield server
    finally:
        server.stop()
