"""Optimization fixtures: the demo tables (created once per test database), a real local upstream, a driver
that sends traffic through the whole middleware stack and flushes the samples, and the analysis."""
from __future__ import annotations

import time

import pytest

from benchmarks.ratelimit_harness import port

UPSTREAM_PORT_OFFSET = 301
DEAD_PORT_OFFSET = 302


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from benchmarks.optimization_demo.schema import ensure_schema

    with django_db_blocker.unblock():
        ensure_schema()


@pytest.fixture(autouse=True)
def _fresh_sampling_budget():
    from apps.optimization import collector

    collector.collector._budget.clear()
    collector._anonymous_ids.clear()
    yield
    collector.sink.take()  # samples of this test's requests must not reach a later flush (or the exit one)


@pytest.fixture(scope="session")
def upstream():
    from benchmarks.optimization_demo import views
    from benchmarks.optimization_demo.upstream import Upstream

    with Upstream(port(UPSTREAM_PORT_OFFSET)) as server:
        views.UPSTREAM = server.url
        views.DEAD_UPSTREAM = f"http://127.0.0.1:{port(DEAD_PORT_OFFSET)}"
        yield server


@pytest.fixture
def drive(client):
    """drive(path, n=30, **extra): n GETs through the full middleware stack, then this process's samples
    are flushed (what the stats flusher thread does every few seconds)."""
    from apps.optimization import collector

    def run(path: str, n: int = 30, **extra) -> list[int]:
        statuses = [client.get("/" + path.lstrip("/"), **extra).status_code for _ in range(n)]
        collector.sink.flush(time.time())
        return statuses

    return run


@pytest.fixture
def analyze():
    from apps.optimization import services

    def run(**kwargs):
        return services.analyze(window_s=kwargs.pop("window_s", 900), **kwargs)

    return run


def kinds_on(found, route: str) -> set[str]:
    return {c.kind for c in found if c.route == route}
