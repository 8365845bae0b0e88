"""Fixtures of the caching tests: a fresh backend per test, a hand-moved clock, synchronous refreshes."""
from __future__ import annotations

import pytest

from apps.caching import stats
from apps.caching.backends import backend_loader, get_backend
from apps.caching.responses import new_store_guard, response_cache
from apps.core.clock import FakeClock
from tests.caching import views


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    backend_loader.reset()
    monkeypatch.setattr(response_cache, "guard", new_store_guard())
    stats.sink.take()
    views.calls.clear()
    views.state.update(version="v1", fail=False, origin_s=0.0)
    yield
    stats.sink.take()  # counts of a rolled-back test have no rows to go to
    backend_loader.reset()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(time=1_000_000.0)
    monkeypatch.setattr(response_cache, "clock", fake)
    return fake


@pytest.fixture
def sync_refresh(monkeypatch) -> list:
    """Background refreshes run inline, so a test sees their effect deterministically; returns their count."""
    ran: list = []

    def run(fn):
        ran.append(fn)
        fn()

    monkeypatch.setattr(response_cache, "spawn", run)
    return ran


@pytest.fixture
def backend():
    return get_backend()
