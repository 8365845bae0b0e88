"""Rate-limit fixtures: a fake clock, both backends, and a private redis-server that tests may stop."""
from __future__ import annotations

import pytest

from apps.ratelimit import services
from benchmarks.ratelimit_harness import port
from tests.redis_server import RedisServer

T0_US = 28_333_334 * 60_000_000  # a whole minute (2023-11-14 22:14 UTC): window arithmetic stays readable


class FakeClock:
    def __init__(self, now_us: int = T0_US) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, *, s: float = 0, us: int = 0) -> None:
        self.now_us += int(s * 1_000_000) + us


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_ratelimit_state():
    """A new backend (memory state included) and no pending stats from another test."""
    services._backend = None
    services.stats_counters.take()
    yield
    services._backend = None
    services.stats_counters.take()


@pytest.fixture
def own_redis():
    server = RedisServer(port(10))
    server.start()
    try:
        yield server
    finally:
        server.stop()
