"""Monitoring fixtures: a fresh request sink on the real store, a fake clock, an empty store namespace."""
from __future__ import annotations

import pytest

from apps.core.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time=1_800_000_000.0)  # 2027-01-15T08:00:00Z, a minute boundary


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
