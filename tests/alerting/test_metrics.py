"""The metric kinds alerting registers, each read from real data: monitoring's live minutes in Redis
(endpoints), system samples, the job queue, breakers opened by failures or by an operator, rate-limit and
cache stat minutes; and an error-rate rule driven by recorded requests."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.alerting import services
from apps.alerting.evaluation import evaluate_tenant
from apps.alerting.models import Alert
from apps.core import metric_kinds
from apps.resilience.models import BreakerPolicy
from tests.caching.factories import CacheStatMinuteFactory
from tests.jobs.factories import JobRunFactory
from tests.ratelimit.factories import RateLimitStatFactory
from tests.resilience.conftest import fresh_registry  # noqa: F401 - breakers on a memory backend, flushed by hand
from tests.resilience.factories import BreakerPolicyFactory

pytestmark = pytest.mark.django_db
# 30 s into a minute, for the readers of database rows (their windows are whole minutes).
NOW = datetime(2027, 1, 15, 12, 0, 30, tzinfo=UTC)


def read(metric: str, tenant, now: datetime = NOW, window_s: int = 60) -> list:
    """The readings of a registered kind, sorted by labels so that tests compare whole lists."""
    return sorted(metric_kinds.get(metric).read(tenant.pk, window_s, now), key=lambda r: sorted(r[0].items()))


@pytest.fixture
def sink(redis_url, monkeypatch):
    from apps.monitoring import recorder
    from apps.monitoring.backends.redis import RedisMetricsStore

    fresh = recorder.RequestSink(RedisMetricsStore())
    monkeypatch.setattr(recorder, "sink", fresh)
    return fresh


def record(sink, tenant, at: float, statuses: list[int], route="api/v1/orders"):
    for status in statuses:
        sink.record(tenant.pk, route, "POST", status, 20.0, now=at)
    sink.flush(at)


def test_error_rate_is_read_per_route_of_the_tenant_only(sink, tenant_a, tenant_b):
    now = 1_800_000_030.0  # 30 s into a minute
    record(sink, tenant_a, now - 5, [200] * 9 + [500])
    record(sink, tenant_b, now - 5, [500] * 10)
    read = metric_kinds.get("endpoint_error_rate").read
    assert read(tenant_a.pk, 60, datetime.fromtimestamp(now, tz=UTC)) == [
        ({"route": "api/v1/orders", "method": "POST"}, 0.1)]


def test_a_window_read_just_after_a_minute_boundary_still_sees_the_last_minute(sink, tenant_a):
    """Otherwise a pending alert would flap to inactive at every minute boundary and never fire."""
    boundary = 1_800_000_000.0
    record(sink, tenant_a, boundary - 20, [500] * 5)
    read = metric_kinds.get("endpoint_error_rate").read
    assert read(tenant_a.pk, 60, datetime.fromtimestamp(boundary + 2, tz=UTC)) == [
        ({"route": "api/v1/orders", "method": "POST"}, 1.0)]


def test_an_error_rate_rule_fires_from_recorded_requests(sink, tenant_a):
    services.rule_create(tenant=tenant_a, data={"name": "orders", "metric": "endpoint_error_rate",
                                                "matchers": {"route": "api/v1/orders"}, "for_s": 30})
    start = 1_800_000_010.0
    for step in range(4):  # one cycle every 15 s, requests failing 10 % of the time throughout
        at = start + 15 * step
        record(sink, tenant_a, at - 1, [200] * 9 + [500])
        evaluate_tenant(tenant_id=tenant_a.pk, now=datetime.fromtimestamp(at, tz=UTC))
    alerts = {a.severity: a.state for a in Alert.objects.for_tenant(tenant_a)}
    assert alerts == {"warning": "firing", "critical": "firing"}  # 0.1 is above both default levels


def record_durations(sink, tenant, at: float, durations_ms: list[float], route="api/v1/orders", method="GET"):
    for duration_ms in durations_ms:
        sink.record(tenant.pk, route, method, 200, duration_ms, now=at)
    sink.flush(at)


@pytest.mark.parametrize("metric, expected_ms", [("endpoint_p95_ms", 400.0), ("endpoint_p99_ms", 2000.0)])
def test_latency_percentiles_are_read_per_route_within_the_histograms_one_percent(sink, tenant_a, tenant_b,
                                                                                 metric, expected_ms):
    now = 1_800_000_030.0
    record_durations(sink, tenant_a, now - 5, [10.0] * 90 + [400.0] * 8 + [2000.0] * 2)
    record_durations(sink, tenant_a, now - 5, [5.0] * 10, route="api/v1/health")
    record_durations(sink, tenant_b, now - 5, [9000.0] * 10)
    readings = read(metric, tenant_a, datetime.fromtimestamp(now, tz=UTC))
    assert [labels for labels, _value in readings] == [{"route": "api/v1/health", "method": "GET"},
                                                        {"route": "api/v1/orders", "method": "GET"}]
    assert readings[0][1] == pytest.approx(5.0, rel=0.01)
    assert readings[1][1] == pytest.approx(expected_ms, rel=0.01)


def test_rps_divides_the_windows_requests_by_the_seconds_it_covers(sink, tenant_a):
    now = 1_800_000_030.0  # a 60 s window reads the previous whole minute and these 30 s: 90 s
    record_durations(sink, tenant_a, now - 200, [10.0] * 500)  # three minutes ago: outside
    record_durations(sink, tenant_a, now - 50, [10.0] * 120)
    record_durations(sink, tenant_a, now - 5, [10.0] * 30)
    assert read("endpoint_rps", tenant_a, datetime.fromtimestamp(now, tz=UTC)) == [
        ({"route": "api/v1/orders", "method": "GET"}, pytest.approx(150 / 90))]


def sample(host: str, seconds_ago: float, cpu: float, memory: float = 40.0, disk: float = 50.0):
    from apps.monitoring.models import SystemSample

    return SystemSample.objects.create(host=host, taken_at=NOW - timedelta(seconds=seconds_ago), cpu_percent=cpu,
                                       memory_percent=memory, disk_percent=disk)


@pytest.mark.parametrize("metric, field", [("cpu_percent", "cpu"), ("memory_percent", "memory"),
                                           ("disk_percent", "disk")])
def test_host_figures_are_each_hosts_newest_sample_within_the_window(tenant_a, metric, field):
    def figures(value):
        return {"cpu": value, "memory": value + 1, "disk": value + 2}

    sample("web-1", 50, **figures(10.0))
    sample("web-1", 5, **figures(80.0))  # web-1's newest
    sample("web-2", 20, **figures(30.0))
    sample("web-3", 90, **figures(99.0))  # older than the window
    sample("web-1", -5, **figures(1.0))  # after `now`
    offset = {"cpu": 0, "memory": 1, "disk": 2}[field]
    assert read(metric, tenant_a) == [({"host": "web-1"}, 80.0 + offset), ({"host": "web-2"}, 30.0 + offset)]
    assert read(metric, tenant_a, window_s=120) == [({"host": "web-1"}, 80.0 + offset),
                                                    ({"host": "web-2"}, 30.0 + offset),
                                                    ({"host": "web-3"}, 99.0 + offset)]


def test_queue_depth_and_age_count_the_tenants_waiting_runs_per_type(tenant_a, tenant_b):
    for status, type_, age_s in [("queued", "reports.build", 30), ("queued", "reports.build", 300),
                                 ("retrying", "reports.build", 120), ("queued", "cache.warm", 45),
                                 ("running", "cache.warm", 900), ("failed", "cache.warm", 900),
                                 ("succeeded", "mail.send", 900)]:
        JobRunFactory(tenant=tenant_a, type=type_, status=status, queued_at=NOW - timedelta(seconds=age_s))
    JobRunFactory(tenant=tenant_b, type="reports.build", status="queued", queued_at=NOW - timedelta(hours=5))
    assert read("queue_depth", tenant_a) == [({"type": "cache.warm"}, 1.0), ({"type": "reports.build"}, 3.0)]
    assert read("queue_age_s", tenant_a) == [({"type": "cache.warm"}, 45.0), ({"type": "reports.build"}, 300.0)]


def test_breaker_open_reads_one_for_a_breaker_opened_by_failures_or_forced_open(tenant_a, tenant_b):
    from apps.resilience.runtime import get_breaker, registry
    from apps.resilience.services import breaker_force

    for name in ("payments", "search", "mail", "cache"):
        BreakerPolicyFactory(tenant=tenant_a, name=name, window_size=10, minimum_calls=2)
    BreakerPolicyFactory(tenant=tenant_b, name="theirs", forced_state="forced_open")
    for name in ("payments", "cache"):  # both open on their failures
        breaker = get_breaker(name, tenant_a)
        for _ in range(2):
            breaker.record(breaker.acquire(), "failure", duration_s=0.01)
    registry.flush_all()  # writes the open transitions the reader finds
    policies = {p.name: p for p in BreakerPolicy.objects.for_tenant(tenant_a)}
    breaker_force(policy=policies["search"], forced_state="forced_open")
    breaker_force(policy=policies["cache"], forced_state="forced_closed")  # an operator overrides the open
    assert read("breaker_open", tenant_a) == [({"dependency": "cache"}, 0.0), ({"dependency": "mail"}, 0.0),
                                              ({"dependency": "payments"}, 1.0), ({"dependency": "search"}, 1.0)]


def test_ratelimit_denials_sum_the_windows_minutes_per_policy(tenant_a, tenant_b):
    minute = NOW.replace(second=0)
    this = RateLimitStatFactory(tenant=tenant_a, policy__name="login", minute=minute, allowed=50, denied=7)
    RateLimitStatFactory(tenant=tenant_a, policy=this.policy, minute=minute - timedelta(minutes=1), denied=5)
    RateLimitStatFactory(tenant=tenant_a, policy=this.policy, minute=minute - timedelta(minutes=2), denied=100)
    RateLimitStatFactory(tenant=tenant_a, policy__name="search", minute=minute, allowed=9, denied=0)
    RateLimitStatFactory(tenant=tenant_b, policy__name="login", minute=minute, denied=1000)
    assert read("ratelimit_denials", tenant_a) == [({"policy": "login"}, 7.0), ({"policy": "search"}, 0.0)]
    assert read("ratelimit_denials", tenant_a, window_s=120) == [({"policy": "login"}, 12.0),
                                                                 ({"policy": "search"}, 0.0)]


def test_cache_hit_ratio_counts_stale_copies_as_served_over_the_window(tenant_a, tenant_b):
    minute = NOW.replace(second=0)
    this = CacheStatMinuteFactory(tenant=tenant_a, policy__name="items", minute=minute, hits=6, stale=2, misses=2)
    CacheStatMinuteFactory(tenant=tenant_a, policy=this.policy, minute=minute - timedelta(minutes=1), hits=0, misses=10)
    CacheStatMinuteFactory(tenant=tenant_a, policy__name="idle", minute=minute)  # no lookups: no reading
    CacheStatMinuteFactory(tenant=tenant_b, policy__name="items", minute=minute, hits=0, misses=50)
    assert read("cache_hit_ratio", tenant_a) == [({"policy": "items"}, 0.8)]
    assert read("cache_hit_ratio", tenant_a, window_s=120) == [({"policy": "items"}, 0.4)]
