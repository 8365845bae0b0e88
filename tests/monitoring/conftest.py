"""Monitoring fixtures: a fresh request sink on the real store, a fake clock, an empty store namespace."""
from __future__ import annotations

import pytest


class FakeClock:
    """Wall time by hand (the shape of apps.core.clock.Clock's `time()`)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:  # 2027-01-15T08:00:00Z, a minute boundary
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, s: float) -> None:
        self.now += s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(redis_url):
    from apps.monitoring.backends.redis import RedisMetricsStore

    return RedisMetricsStore()


@pytest.fixture
def sink(store, monkeypatch):
    """The recorder's sink replaced by a fresh one (not flushed by the process's flusher thread)."""
    from apps.monitoring import recorder

    fresh = recorder.RequestSink(store)
    monkeypatch.setattr(recorder, "sink", fresh)
    return fresh
