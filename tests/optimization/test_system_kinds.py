"""Kinds read from what other apps count (cache, breaker, rate-limit stats) and from system samples, each
on planted rows beside a healthy twin that stays silent."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.caching.models import CachePolicy, CacheStatMinute
from apps.monitoring.models import SystemSample
from apps.ratelimit.models import RateLimitPolicy, RateLimitStat
from apps.resilience.models import BreakerEvent

pytestmark = pytest.mark.django_db


def _minutes_ago(n: int) -> datetime:
    return datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(minutes=n)


def _subjects(found, kind):
    return {c.subject for c in found if c.kind == kind}


def test_cache_poor_hit_ratio(tenant_a, analyze):
    poor = CachePolicy.objects.create(tenant=tenant_a, name="poor", path_pattern="^/a/", ttl_s=5)
    good = CachePolicy.objects.create(tenant=tenant_a, name="good", path_pattern="^/b/", ttl_s=60)
    CacheStatMinute.objects.create(tenant=tenant_a, policy=poor, minute=_minutes_ago(2), hits=5, misses=95)
    CacheStatMinute.objects.create(tenant=tenant_a, policy=good, minute=_minutes_ago(2), hits=90, misses=10)
    found = [c for c in analyze() if c.kind == "cache_poor_hit_ratio"]
    assert [c.subject for c in found] == ["cache policy poor"]
    assert found[0].fix == {"policy": "cache", "update": poor.pk, "data": {"ttl_s": 20}}


def test_breaker_flapping(tenant_a, analyze):
    for i in range(4):
        BreakerEvent.objects.create(tenant=tenant_a, name="payments", from_state="closed", to_state="open",
                                    reason="rate", at=_minutes_ago(i))
    BreakerEvent.objects.create(tenant=tenant_a, name="search", from_state="closed", to_state="open", reason="rate",
                                at=_minutes_ago(1))
    found = analyze()
    assert _subjects(found, "breaker_flapping") == {"payments"}
    assert next(c for c in found if c.kind == "breaker_flapping").line().split("\t")[1] == "-"


def _policy(tenant, name, **kwargs):
    return RateLimitPolicy.objects.create(tenant=tenant, name=name, rate=kwargs.pop("rate", 100), **kwargs)


def test_ratelimit_shadow_impact(tenant_a, analyze):
    harsh = _policy(tenant_a, "harsh", mode="shadow")
    lenient = _policy(tenant_a, "lenient", mode="shadow")
    RateLimitStat.objects.create(tenant=tenant_a, policy=harsh, minute=_minutes_ago(1), allowed=80, shadow_denied=20)
    RateLimitStat.objects.create(tenant=tenant_a, policy=lenient, minute=_minutes_ago(1), allowed=100)
    found = [c for c in analyze() if c.kind == "ratelimit_shadow_impact"]
    assert [c.subject for c in found] == ["rate limit harsh"]
    assert "20.0%" in found[0].summary


def test_ratelimit_never_triggers(tenant_a, analyze):
    idle = _policy(tenant_a, "idle", rate=10_000)
    busy = _policy(tenant_a, "busy", rate=100)
    for i in range(5):
        RateLimitStat.objects.create(tenant=tenant_a, policy=idle, minute=_minutes_ago(i), allowed=40)
        RateLimitStat.objects.create(tenant=tenant_a, policy=busy, minute=_minutes_ago(i), allowed=90)
    assert _subjects(analyze(), "ratelimit_never_triggers") == {"rate limit idle"}


def _samples(cpu, memory, connections, ages, depths):
    start = datetime.now(tz=UTC) - timedelta(minutes=len(ages))
    for i, (age, depth) in enumerate(zip(ages, depths, strict=True)):
        SystemSample.objects.create(
            host="h1", taken_at=start + timedelta(minutes=i), cpu_percent=cpu, memory_percent=memory,
            disk_percent=10, data={"postgres": {"connections": connections},
                                   "jobs": {"oldest_age_s": age, "queue_depth": depth}})


def test_saturation_kinds_on_a_saturated_system(analyze):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
    _samples(97, 95, limit - 1, ages=[30, 90, 150, 210, 270], depths=[10, 20, 30, 40, 50])
    found = analyze()
    kinds = {c.kind for c in found if c.route == "-" and c.tenant_id is None}
    assert {"cpu_saturation", "memory_saturation", "db_connection_saturation", "job_queue_backlog"} <= kinds


def test_a_healthy_system_is_silent(analyze):
    _samples(35, 50, 5, ages=[5, 2, 8, 1, 4], depths=[1, 0, 2, 0, 1])
    kinds = {c.kind for c in analyze()}
    assert not kinds & {"cpu_saturation", "memory_saturation", "db_connection_saturation", "job_queue_backlog"}


def test_a_tenant_scoped_analysis_leaves_out_the_system(tenant_a, analyze):
    _samples(97, 95, 5, ages=[30, 90, 150], depths=[1, 2, 3])
    assert not analyze(tenant=tenant_a)


def test_a_window_ends_where_it_ends(analyze):
    """A past window leaves out what came after it: saturated samples now, a healthy window an hour ago."""
    import time

    start = datetime.now(tz=UTC) - timedelta(hours=1)
    for i, cpu in enumerate([30, 35, 40]):
        SystemSample.objects.create(host="h1", taken_at=start + timedelta(minutes=i), cpu_percent=cpu,
                                    memory_percent=40, disk_percent=10, data={})
    _samples(97, 95, 5, ages=[30, 90, 150], depths=[1, 2, 3])
    past = {c.kind for c in analyze(window_s=15 * 60, now=time.time() - 3600 + 5 * 60)}
    assert not past & {"cpu_saturation", "memory_saturation"}
    assert {"cpu_saturation", "memory_saturation"} <= {c.kind for c in analyze()}


def test_each_resource_has_its_own_saturation_level_defaulting_to_the_general_one(analyze, settings):
    _samples(85, 85, 5, ages=[1, 1, 1], depths=[0, 0, 0])
    assert not {c.kind for c in analyze()} & {"cpu_saturation", "memory_saturation"}  # SATURATION_PCT 90
    settings.BULWARK = {"OPTIMIZATION": {"CPU_SATURATION_PCT": 80}}
    assert {c.kind for c in analyze()} & {"cpu_saturation", "memory_saturation"} == {"cpu_saturation"}
    settings.BULWARK = {"OPTIMIZATION": {"SATURATION_PCT": 80, "MEMORY_SATURATION_PCT": 95}}
    assert {c.kind for c in analyze()} & {"cpu_saturation", "memory_saturation"} == {"cpu_saturation"}


@pytest.mark.parametrize("value", [0, 101, "90", True])
def test_a_bad_saturation_level_is_refused_at_start(value, settings):
    from django.core.exceptions import ImproperlyConfigured

    from apps.optimization.conf import optimization_settings

    settings.BULWARK = {"OPTIMIZATION": {"DB_CONNECTION_SATURATION_PCT": value}}
    with pytest.raises(ImproperlyConfigured, match="DB_CONNECTION_SATURATION_PCT"):
        optimization_settings.validate()
