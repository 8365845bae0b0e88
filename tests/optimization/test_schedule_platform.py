"""The scheduled analysis runs per tenant; the first run of a tick also covers the platform (traffic without a
tenant, and the whole system with route `-`), and only that one."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.core.clock import FakeClock
from apps.monitoring.models import SystemSample
from apps.optimization import jobs
from apps.optimization.models import Finding
from benchmarks.optimization_demo.urls import HEALTHY, PLANTED

pytestmark = [pytest.mark.django_db, pytest.mark.urls("benchmarks.optimization_demo.urls")]


class Ctx:
    def __init__(self, tenant):
        self.tenant = tenant

    def progress(self, pct, message=""):
        pass


@pytest.fixture
def tick(monkeypatch):
    """The platform slot's clock at a slot no other run (of this or an earlier test session) has claimed."""
    clock = FakeClock(time=10**12 + random.randrange(10**9) * jobs.ANALYZE_EVERY_MIN * 60.0)
    monkeypatch.setattr(jobs, "clock", clock)
    return clock


def _saturated_system():
    start = datetime.now(tz=UTC) - timedelta(minutes=5)
    for i in range(5):
        SystemSample.objects.create(host="h1", taken_at=start + timedelta(minutes=i), cpu_percent=97,
                                    memory_percent=40, disk_percent=10, data={})


def test_the_first_run_of_a_tick_covers_the_platform_once(tenant_a, tenant_b, drive, tick):
    _saturated_system()
    drive(PLANTED["repeated_query"])  # anonymous, no anonymous tenant: platform traffic
    drive(HEALTHY[1])  # its healthy twin (the setting read once)

    first = jobs.analyze(Ctx(tenant_a), {})
    assert first["kinds"] == []  # tenant a has no traffic of its own
    assert first["platform"]["kinds"] == ["cpu_saturation", "repeated_query"]
    platform = Finding.objects.filter(tenant__isnull=True)
    assert {(f.kind, f.route) for f in platform} == {("cpu_saturation", "-"),
                                                     ("repeated_query", PLANTED["repeated_query"])}
    assert not platform.filter(route=HEALTHY[1]).exists()

    second = jobs.analyze(Ctx(tenant_b), {})  # the same tick: the platform was diagnosed already
    assert "platform" not in second
    assert set(platform.values_list("occurrences", flat=True)) == {1}

    tick.advance(jobs.ANALYZE_EVERY_MIN * 60)  # the next tick: one run covers it again
    assert jobs.analyze(Ctx(tenant_b), {})["platform"]["kinds"] == ["cpu_saturation", "repeated_query"]
    assert set(platform.values_list("occurrences", flat=True)) == {2}
    assert not Finding.objects.filter(tenant__isnull=False).exists()
