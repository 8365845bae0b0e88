"""Fixtures of the caching tests: a fresh backend per test, a hand-moved clock, synchronous refreshes."""
from __future__ import annotations

import pytest

from apps.caching import stats
from apps.caching.backends import get_backend, reset_backend
from apps.caching.responses import response_cache
from tests.caching import views


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(autouse=True, scope="session")
def _no_background_stats_flush():
    """Tests flush statistics by hand: a flush thread would hold a connection to the test database."""
    stats.counters()._stop.set()


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    reset_backend()
    monkeypatch.setattr(response_cache, "_down_until", 0.0)
    stats.counters().take()
    views.calls.clear()
    views.state.update(version="v1", fail=False)
    yield
    stats.counters().take()  # counts of a rolled-back test have no rows to go to
    reset_backend()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
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
