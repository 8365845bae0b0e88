"""Monitoring's series read through analytics' sources: real requests recorded into monitoring's Redis store,
folded into rollup rows by monitoring's own rollup, then read, listed and forecast by analytics."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.analytics import monitoring_series, services, sources
from apps.analytics.models import Forecast
from apps.core.errors import ApplicationError
from apps.jobs import runner
from apps.jobs.services import job_submit
from apps.monitoring import recorder
from apps.monitoring import services as monitoring_services
from apps.monitoring.backends.redis import RedisMetricsStore

pytestmark = pytest.mark.django_db
ROUTE = "api/v1/orders/<int:pk>"
HOURS = 6


@pytest.fixture
def store(redis_url, monkeypatch):
    store = RedisMetricsStore()
    monkeypatch.setattr(recorder, "sink", recorder.RequestSink(store))
    return store


def _traffic(store, tenant, route, *, method="GET", hours=HOURS, per_hour=lambda h: 10 + h, slow_ms=None,
             errors=0):
    """`per_hour(h)` requests in each of the last `hours` whole hours (h = 0 the oldest), 20 ms each (`slow_ms`
    for every fifth), `errors` of them 5xx per hour; then monitoring's rollup folds them into minute rows."""
    sink = recorder.sink
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    for h in range(hours):
        at = (top - timedelta(hours=hours - h)).timestamp() + 90
        for i in range(per_hour(h)):
            duration = slow_ms if slow_ms and i % 5 == 0 else 20.0
            sink.record(tenant.pk, route, method, 500 if i < errors else 200, duration, now=at + i)
    sink.flush(top.timestamp())
    monitoring_services.rollup_fold(tenant=tenant, store=store, now=top.timestamp() + 3600)
    return top


def test_endpoint_rps_and_error_rate_come_back_per_hour(store, tenant_a):
    top = _traffic(store, tenant_a, ROUTE, errors=2)
    start = top - timedelta(hours=HOURS)
    # rps starts at the first traffic (monitoring's zeros before it are not history), then keeps quiet hours
    early = sources.read_series(tenant=tenant_a, series=f"endpoint_rps:{ROUTE}", start=start - timedelta(days=3),
                                end=top + timedelta(hours=2), step_s=3600)
    assert early[0][0] == start and [v for _, v in early[-2:]] == [0.0, 0.0]
    rps = sources.read_series(tenant=tenant_a, series=f"endpoint_rps:{ROUTE}", start=start, end=top, step_s=3600)
    assert [t for t, _ in rps] == [start + timedelta(hours=h) for h in range(HOURS)]
    assert [v for _, v in rps] == pytest.approx([(10 + h) / 3600 for h in range(HOURS)])
    errors = sources.read_series(tenant=tenant_a, series=f"endpoint_error_rate:{ROUTE}", start=start, end=top,
                                 step_s=3600)
    assert [v for _, v in errors] == pytest.approx([2 / (10 + h) for h in range(HOURS)])


def test_endpoint_p95_reads_the_histogram_and_a_method_prefix_picks_the_method(store, tenant_a):
    top = _traffic(store, tenant_a, ROUTE, per_hour=lambda h: 100, slow_ms=800.0)
    _traffic(store, tenant_a, ROUTE, method="POST", per_hour=lambda h: 100)
    start = top - timedelta(hours=HOURS)
    get_p95 = sources.read_series(tenant=tenant_a, series=f"endpoint_p95_ms:{ROUTE}", start=start, end=top,
                                  step_s=3600)
    post_p95 = sources.read_series(tenant=tenant_a, series=f"endpoint_p95_ms:POST {ROUTE}", start=start, end=top,
                                   step_s=3600)
    assert len(get_p95) == len(post_p95) == HOURS
    assert all(v > 700 for _, v in get_p95)            # 20 % of GETs take 800 ms
    assert all(v < 30 for _, v in post_p95)            # every POST takes 20 ms


def test_the_listers_name_the_tenants_routes_only(store, tenant_a, tenant_b):
    _traffic(store, tenant_a, ROUTE)
    _traffic(store, tenant_a, "api/v1/items", method="POST")
    _traffic(store, tenant_b, "api/v1/secret-of-b")
    keys = sources.list_series(tenant=tenant_a)
    for kind in monitoring_series.ENDPOINT_KINDS:
        assert f"{kind}:{ROUTE}" in keys
        assert f"{kind}:POST api/v1/items" in keys
    assert not [k for k in keys if "secret-of-b" in k]
    assert all(k.startswith("endpoint_") for k in keys if k.endswith(ROUTE))
    assert sources.list_series(tenant=tenant_b) == sorted(
        f"{kind}:api/v1/secret-of-b" for kind in monitoring_series.ENDPOINT_KINDS)


def test_a_route_of_another_tenant_reads_as_no_traffic(store, tenant_a, tenant_b):
    top = _traffic(store, tenant_b, "api/v1/secret-of-b", errors=1)
    start = top - timedelta(hours=HOURS)
    assert sources.read_series(tenant=tenant_a, series="endpoint_error_rate:api/v1/secret-of-b", start=start,
                               end=top, step_s=3600) == []
    assert sources.read_series(tenant=tenant_a, series="endpoint_rps:api/v1/secret-of-b", start=start, end=top,
                               step_s=3600) == []


def test_an_endpoint_key_without_a_route_is_a_field_error(tenant_a):
    with pytest.raises(ApplicationError) as err:
        services.forecast_refresh(tenant=tenant_a, series="endpoint_rps:", now=timezone.now())
    assert "series" in err.value.extra["errors"]


def test_the_refresh_job_forecasts_endpoint_series_with_the_tenants_critical_levels(store, tenant_a, tenant_b):
    _traffic(store, tenant_a, ROUTE, errors=1)
    _traffic(store, tenant_b, "api/v1/secret-of-b")
    monitoring_services.thresholds_update(tenant=tenant_a, data={"response_time_warning_ms": 200,
                                                                 "response_time_critical_ms": 400})
    run = job_submit(job_type="analytics.forecast_refresh", params={}, tenant=tenant_a, submitted_by=None)
    runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    forecasts = {f.series: f for f in Forecast.objects.for_tenant(tenant_a)}
    assert set(forecasts) == {f"{kind}:{ROUTE}" for kind in monitoring_series.ENDPOINT_KINDS}
    assert not Forecast.objects.for_tenant(tenant_b).exists()
    rps = forecasts[f"endpoint_rps:{ROUTE}"]
    # from the first traffic on: the six hours, plus the quiet current hour (two, if the clock just turned)
    assert HOURS + 1 <= rps.history_points <= HOURS + 2
    assert len(rps.points) == rps.horizon and rps.threshold is None
    assert forecasts[f"endpoint_p95_ms:{ROUTE}"].threshold == 400.0          # the tenant's edited level
    assert forecasts[f"endpoint_p99_ms:{ROUTE}"].threshold == 400.0
    assert forecasts[f"endpoint_error_rate:{ROUTE}"].threshold == pytest.approx(0.05)   # default 5 %, as a share


def test_a_climbing_p95_gets_a_crossing_time(store, tenant_a):
    # Every fifth request's latency climbs 100 ms an hour: p95 (a slow request) climbs toward 1000 ms.
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    sink = recorder.sink
    for h in range(12):
        at = (top - timedelta(hours=12 - h)).timestamp() + 600
        for i in range(20):
            sink.record(tenant_a.pk, "api/v1/slowing", "GET", 200, 100.0 * (h + 1) if i % 5 == 0 else 5.0,
                        now=at + i)
    sink.flush(top.timestamp())
    monitoring_services.rollup_fold(tenant=tenant_a, store=store, now=top.timestamp() + 3600)
    forecast = services.forecast_refresh(tenant=tenant_a, series="endpoint_p95_ms:api/v1/slowing", horizon=48,
                                         now=top)
    assert forecast.threshold == 1000.0
    first_over = next((datetime.fromisoformat(t) for t, p, _, _ in forecast.points if p >= 1000.0), None)
    assert first_over is not None and forecast.threshold_crossing_at == first_over


def _samples(hours: int, figures_at):
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    for h in range(hours):
        for host in ("web-1", "web-2"):
            for minute in (5, 35):
                taken = top - timedelta(hours=hours - h) + timedelta(minutes=minute)
                monitoring_services.sample_record(host=host, figures=figures_at(h, host, minute), taken_at=taken)
    return top


def test_host_series_take_the_worst_host_per_step_and_the_queue_depth(tenant_a, tenant_b):
    def figures(h, host, minute):
        base = 50.0 if host == "web-1" else 30.0
        return {"cpu_percent": base + h + (2 if minute == 35 else 0), "memory_percent": 40.0 + h,
                "disk_percent": 70.0, "jobs": {"queue_depth": 3 * h}}

    top = _samples(4, figures)
    start = top - timedelta(hours=4)
    read = {kind: sources.read_series(tenant=tenant_a, series=kind, start=start, end=top, step_s=3600)
            for kind in (*monitoring_series.HOST_KINDS, monitoring_series.QUEUE_KIND)}
    assert read["cpu_percent"] == [(start + timedelta(hours=h), 51.0 + h) for h in range(4)]   # web-1's mean
    assert [v for _, v in read["memory_percent"]] == [40.0 + h for h in range(4)]
    assert [v for _, v in read["disk_percent"]] == [70.0] * 4
    assert [v for _, v in read["jobs_queue_depth"]] == [3.0 * h for h in range(4)]
    for tenant in (tenant_a, tenant_b):
        keys = sources.list_series(tenant=tenant)
        assert {"cpu_percent", "memory_percent", "disk_percent", "jobs_queue_depth"} <= set(keys)


def test_host_forecasts_carry_the_tenants_cpu_memory_and_disk_levels(tenant_a):
    _samples(6, lambda h, host, minute: {"cpu_percent": 60.0 + 5 * h, "memory_percent": 50.0,
                                         "disk_percent": 80.0})
    monitoring_services.thresholds_update(tenant=tenant_a, data={"cpu_warning_pct": 70, "cpu_critical_pct": 80})
    now = timezone.now()
    cpu = services.forecast_refresh(tenant=tenant_a, series="cpu_percent", horizon=24, now=now)
    memory = services.forecast_refresh(tenant=tenant_a, series="memory_percent", horizon=24, now=now)
    disk = services.forecast_refresh(tenant=tenant_a, series="disk_percent", horizon=24, now=now)
    assert (cpu.threshold, memory.threshold, disk.threshold) == (80.0, 85.0, 95.0)
    assert sources.list_series(tenant=tenant_a) == ["cpu_percent", "disk_percent", "memory_percent"]


def test_no_samples_no_host_series(tenant_a):
    assert sources.list_series(tenant=tenant_a) == []
    assert sources.read_series(tenant=tenant_a, series="cpu_percent", start=datetime(2026, 1, 1, tzinfo=UTC),
                               end=datetime(2026, 1, 2, tzinfo=UTC), step_s=3600) == []
