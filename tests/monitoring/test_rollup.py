"""Reads, rollup and downsampling on a fake clock: the same figures live in Redis, folded into rows, and
downsampled to hours; each tenant reads only its own."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from apps.core import histogram
from apps.monitoring import selectors, services
from apps.monitoring.models import EndpointRollup

pytestmark = pytest.mark.django_db
ROUTE = "api/v1/things/<int:pk>"


def exact(values, q):
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def close(answer, truth):
    return abs(answer - truth) <= histogram.RELATIVE_ERROR * truth * (1 + 1e-9)


@pytest.fixture
def traffic(sink, clock, tenant_a):
    """Three minutes of traffic of tenant A: minute m has 100 requests of 1..100 ms x (m + 1), 5 of them 5xx."""
    durations = []
    start = clock.time()
    for minute in range(3):
        for i in range(1, 101):
            duration = i * (minute + 1.0)
            durations.append(duration)
            sink.record(tenant_a.pk, ROUTE, "GET", 500 if i % 20 == 0 else 200, duration, db_ms=duration / 4,
                        queries=2, size=10, now=start + 60 * minute + 1)
    clock.advance(179)  # now = the last second of the third minute
    sink.flush(clock.time())
    return durations


def test_summaries_merge_histograms_and_divide_by_the_seconds_covered(traffic, clock, tenant_a, store):
    [item] = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=store)
    assert (item["route"], item["method"], item["count"]) == (ROUTE, "GET", 300)
    start, end = selectors.window_bounds(window_s=900, now=clock.time())
    assert item["rps"] == pytest.approx(300 / (end - start))
    assert end - start == 900 - 1
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        assert close(item[key], exact(traffic, q)), key
    assert item["error_rate"] == pytest.approx(15 / 300)
    assert item["db_time_share"] == pytest.approx(0.25)
    assert item["queries_per_request"] == pytest.approx(2.0)
    assert set(item) >= {"route", "method", "count", "rps", "p50_ms", "p95_ms", "p99_ms", "error_rate",
                         "db_time_share", "queries_per_request"}


def test_rollup_folds_closed_minutes_once_and_the_figures_stay_the_same(traffic, clock, tenant_a, store):
    before = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=store)
    clock.advance(120)  # every minute is closed and past the grace period
    first = services.rollup_fold(tenant=tenant_a, store=store, now=clock.time())
    again = services.rollup_fold(tenant=tenant_a, store=store, now=clock.time())
    assert (first["folded"], again["folded"]) == (3, 0)
    assert EndpointRollup.objects.filter(resolution_s=60, endpoint__tenant=tenant_a).count() == 3
    assert store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9) == {}
    after = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time() - 120, store=store)
    for key in ("count", "p50_ms", "p95_ms", "p99_ms", "error_rate", "db_time_share", "queries_per_request"):
        assert after[0][key] == before[0][key], key
    assert after[0]["id"] is not None


def test_the_open_minute_is_not_folded(sink, clock, tenant_a, store):
    sink.record(tenant_a.pk, ROUTE, "GET", 200, 5.0, now=clock.time())
    sink.flush(clock.time())
    assert services.rollup_fold(tenant=tenant_a, store=store, now=clock.time() + 30)["folded"] == 0
    assert services.rollup_fold(tenant=tenant_a, store=store, now=clock.time() + 90)["folded"] == 1


def test_late_figures_of_a_folded_minute_are_added_not_lost(sink, clock, tenant_a, store):
    sink.record(tenant_a.pk, ROUTE, "GET", 200, 5.0, now=clock.time())
    sink.flush(clock.time())
    services.rollup_fold(tenant=tenant_a, store=store, now=clock.time() + 120)
    sink.record(tenant_a.pk, ROUTE, "GET", 200, 7.0, now=clock.time())  # a slow process flushes late
    sink.flush(clock.time() + 121)
    [item] = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time() + 1, store=store)
    assert item["count"] == 2
    services.rollup_fold(tenant=tenant_a, store=store, now=clock.time() + 180)
    assert EndpointRollup.objects.get(endpoint__tenant=tenant_a).count_2xx == 2


def test_series_per_minute(traffic, clock, tenant_a, store):
    start = clock.time() - 179
    rps = selectors.endpoint_series(tenant=tenant_a, route=ROUTE, method="GET", metric="rps", start=start,
                                    end=clock.time() + 1, step_s=60, store=store)
    assert [value for _, value in rps] == [100 / 60] * 3
    p99 = selectors.endpoint_series(tenant=tenant_a, route=ROUTE, method="GET", metric="p99_ms", start=start,
                                    end=clock.time() + 1, step_s=60, store=store)
    for minute, (at, value) in enumerate(p99):
        assert at == datetime.fromtimestamp(start // 60 * 60 + 60 * minute, tz=UTC)
        assert close(value, exact([i * (minute + 1.0) for i in range(1, 101)], 0.99))
    errors = selectors.endpoint_series(tenant=tenant_a, route=ROUTE, method="GET", metric="error_rate",
                                       start=start, end=clock.time() + 1, step_s=60, store=store)
    assert [value for _, value in errors] == [0.05] * 3


def test_downsampling_to_hours_and_dropping_old_hours(traffic, clock, tenant_a, store, settings):
    clock.advance(120)
    services.rollup_fold(tenant=tenant_a, store=store, now=clock.time())
    minutes_before = selectors.endpoint_summaries(tenant=tenant_a, window_s=7 * 86400, now=clock.time(), store=store)
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"MINUTE_RETENTION_HOURS": 1, "HOUR_RETENTION_DAYS": 2}}
    later = datetime.fromtimestamp(clock.time(), tz=UTC) + timedelta(hours=2)
    changes = services.rollup_downsample(now=later)
    assert (changes["minutes_downsampled"], changes["hours_written"], changes["hours_deleted"]) == (3, 1, 0)
    [hour] = EndpointRollup.objects.filter(endpoint__tenant=tenant_a)
    assert hour.resolution_s == 3600 and hour.count_2xx + hour.count_5xx == 300
    hours_after = selectors.endpoint_summaries(tenant=tenant_a, window_s=7 * 86400, now=clock.time(), store=store)
    for key in ("count", "p50_ms", "p95_ms", "p99_ms", "error_rate"):
        assert hours_after[0][key] == minutes_before[0][key], key
    from apps.audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="monitoring.retention").count() == 1
    services.rollup_downsample(now=later + timedelta(days=3))
    assert not EndpointRollup.objects.filter(endpoint__tenant=tenant_a).exists()


def test_each_tenant_and_the_platform_read_only_their_own(traffic, sink, clock, tenant_a, tenant_b, store):
    sink.record(None, "healthz", "GET", 200, 1.0, now=clock.time())
    sink.flush(clock.time())
    assert selectors.endpoint_summaries(tenant=tenant_b, window_s=900, now=clock.time(), store=store) == []
    [platform] = selectors.endpoint_summaries(tenant=None, window_s=900, now=clock.time(), store=store)
    assert platform["route"] == "healthz"
    assert [i["route"] for i in selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(),
                                                               store=store)] == [ROUTE]


def test_the_embedded_default_writes_minutes_straight_to_rows(clock, tenant_a):
    from apps.monitoring.backends.database import DatabaseMetricsStore
    from apps.monitoring.recorder import RequestSink

    db_sink = RequestSink(DatabaseMetricsStore())
    for duration in (1.0, 2.0, 3.0):
        db_sink.record(tenant_a.pk, ROUTE, "POST", 201, duration, now=clock.time())
    db_sink.flush(clock.time())
    row = EndpointRollup.objects.get(endpoint__tenant=tenant_a)
    assert (row.count_2xx, row.duration_ms_min, row.duration_ms_max) == (3, 1.0, 3.0)
    [item] = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=db_sink.store)
    assert item["count"] == 3 and close(item["p50_ms"], 2.0)


def test_with_the_store_down_flushes_keep_their_minutes_and_probe_once_per_interval(clock, tenant_a, store):
    """A real Redis store on a port nobody listens on, then the real one: nothing recorded meanwhile is lost,
    the store is tried once per STORE_RETRY_INTERVAL_S (core's StoreGuard), and health says degraded."""
    import redis

    from apps.core import health
    from apps.core.conf import core_settings
    from apps.monitoring.backends.redis import RedisMetricsStore
    from apps.monitoring.recorder import HEALTH_COMPONENT, RequestSink
    from benchmarks.ratelimit_harness import port

    class Switchable(RedisMetricsStore):
        calls = 0

        def merge(self, batch):
            self.calls += 1
            super().merge(batch)

    nobody = redis.Redis(host="127.0.0.1", port=port(39), socket_connect_timeout=0.2)
    switchable = Switchable(client=nobody)
    flaky_sink = RequestSink(switchable, clock=clock)
    interval = float(core_settings.STORE_RETRY_INTERVAL_S)
    flaky_sink.record(tenant_a.pk, ROUTE, "GET", 200, 5.0)
    flaky_sink.flush(clock.time())
    assert switchable.calls == 1 and HEALTH_COMPONENT in health.degraded_components()
    for _ in range(3):  # within the retry interval: the store is not tried again
        clock.advance(interval / 4)
        flaky_sink.record(tenant_a.pk, ROUTE, "GET", 200, 6.0)
        flaky_sink.flush(clock.time())
    assert switchable.calls == 1
    switchable._client = store.client  # the store is back
    clock.advance(interval)
    flaky_sink.flush(clock.time())
    assert switchable.calls == 2 and HEALTH_COMPONENT not in health.degraded_components()
    [item] = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=store)
    assert item["count"] == 4


def test_a_request_at_the_very_start_of_the_current_minute_is_read(sink, clock, tenant_a, store):
    """Regression: the live read stopped one minute early when `now` sat on a minute boundary."""
    assert clock.time() % 60 == 0
    sink.record(tenant_a.pk, ROUTE, "GET", 200, 5.0, now=clock.time())
    sink.flush(clock.time())
    [item] = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=store)
    assert item["count"] == 1


def test_batch_reads_cost_the_same_queries_for_one_route_or_forty(sink, clock, tenant_a, store,
                                                                    django_assert_max_num_queries):
    """Readers (alerting, optimization) read a tenant's every route at once: rows in one query, live minutes
    in one store read; `tenant_series` gives per route exactly what `endpoint_series` does."""
    for i in range(40):
        for n in range(1, 11):
            sink.record(tenant_a.pk, f"api/v1/r{i}", "GET", 500 if n == 10 else 200, n * (i + 1.0), now=clock.time() + 5)
    sink.flush(clock.time())
    services.rollup_fold(tenant=tenant_a, store=store, now=clock.time() + 120)  # some rows, and live minutes
    for n in range(1, 11):
        sink.record(tenant_a.pk, "api/v1/r0", "GET", 200, float(n), now=clock.time() + 65)
    sink.flush(clock.time())
    clock.advance(119)
    with django_assert_max_num_queries(2):
        summaries = selectors.endpoint_summaries(tenant=tenant_a, window_s=900, now=clock.time(), store=store)
    assert len(summaries) == 40 and {s["error_rate"] for s in summaries if s["route"] != "api/v1/r0"} == {0.1}
    with django_assert_max_num_queries(1):
        series = selectors.tenant_series(tenant=tenant_a, start=clock.time() - 600, end=clock.time() + 1,
                                         step_s=60, store=store)
    assert len(series) == 40
    for metric in selectors.SERIES_METRICS:
        assert series[("api/v1/r0", "GET")][metric] == selectors.endpoint_series(
            tenant=tenant_a, route="api/v1/r0", method="GET", metric=metric, start=clock.time() - 600,
            end=clock.time() + 1, step_s=60, store=store)


def test_a_key_the_database_refuses_is_quarantined_and_blocks_nothing_else(clock, tenant_a, tenant_b, store, caplog):
    """Figures beyond a bigint (pushed before ingest bounded counts, or added up over time): the rollup logs
    and drops that one key; the tenant's other routes, the platform's and other tenants' minutes land."""
    from apps.monitoring.aggregate import MinuteAgg

    def agg(count_2xx):
        figures = MinuteAgg()
        figures.classes[2] = count_2xx
        figures.duration_ms_sum, figures.duration_ms_min, figures.duration_ms_max = 5.0, 5.0, 5.0
        figures.hist = {histogram.bucket_of(5.0): 1}
        return figures

    minute = int(clock.time() // 60)
    store.merge({(tenant_a.pk, "svc/huge", "GET", minute): agg(10**19),
                 (tenant_a.pk, "svc/fine", "GET", minute): agg(3),
                 (None, "healthz", "GET", minute): agg(2),
                 (tenant_b.pk, "svc/other", "GET", minute): agg(4)})
    later = clock.time() + 120
    with caplog.at_level("ERROR", logger="apps.monitoring.services"):
        first = services.rollup_fold(tenant=tenant_a, store=store, now=later)
    assert (first["folded"], first["quarantined"]) == (2, 1)
    assert any("svc/huge" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    counts = dict(EndpointRollup.objects.values_list("endpoint__route", "count_2xx"))
    assert counts == {"svc/fine": 3, "healthz": 2}
    assert store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9) == {}  # not put back
    assert services.rollup_fold(tenant=tenant_a, store=store, now=later)["folded"] == 0
    assert services.rollup_fold(tenant=tenant_b, store=store, now=later)["folded"] == 1
    assert EndpointRollup.objects.get(endpoint__route="svc/other").count_2xx == 4


def test_the_embedded_default_quarantines_a_refused_key_too(clock, tenant_a, caplog):
    from apps.monitoring.aggregate import MinuteAgg
    from apps.monitoring.backends.database import DatabaseMetricsStore
    from apps.monitoring.recorder import RequestSink

    db_sink = RequestSink(DatabaseMetricsStore(), clock=clock)
    db_sink.record(tenant_a.pk, ROUTE, "GET", 200, 1.0, now=clock.time())
    huge = MinuteAgg()
    huge.add(2, 5.0, 0.0, 0, 0)
    huge.classes[2] = 10**19
    db_sink.restore({(tenant_a.pk, "svc/huge", "GET", int(clock.time() // 60)): huge})
    with caplog.at_level("ERROR", logger="apps.monitoring.services"):
        db_sink.flush(clock.time())
    assert not db_sink.guard.is_down  # bad figures are not an outage
    assert dict(EndpointRollup.objects.values_list("endpoint__route", "count_2xx")) == {ROUTE: 1}
    assert db_sink.take() == {}  # nothing kept to fail again at every flush
