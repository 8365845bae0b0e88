"""Services on the database: ingest, forecast refresh, detection into Anomaly rows, the series-source registry."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from apps.analytics import services, sources
from apps.analytics.models import Anomaly, Forecast, SeriesPoint
from apps.core.errors import ApplicationError
from tests.analytics.series import register_endpoint_readers, seasonal_5min, seasonal_hourly

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)   # a Monday


def _ingest(tenant, series, values, step_s, end=NOW):
    start = end - timedelta(seconds=step_s * len(values))
    points = [(start + timedelta(seconds=step_s * i), float(v)) for i, v in enumerate(values)]
    return services.points_ingest(tenant=tenant, series=series, points=points, now=end)


def test_ingest_overwrites_the_same_timestamp_and_refuses_other_kinds(tenant_a):
    t = NOW - timedelta(hours=1)
    services.points_ingest(tenant=tenant_a, series="ingested:q", points=[(t, 1.0)], now=NOW)
    services.points_ingest(tenant=tenant_a, series="ingested:q", points=[(t, 2.0)], now=NOW)
    assert list(SeriesPoint.objects.for_tenant(tenant_a).values_list("value", flat=True)) == [2.0]
    with pytest.raises(ApplicationError) as err:
        services.points_ingest(tenant=tenant_a, series="cpu_percent", points=[(t, 1.0)], now=NOW)
    assert "series" in err.value.extra["errors"]


def test_forecast_refresh_stores_points_model_backtest_and_threshold_crossing(tenant_a):
    y = seasonal_hourly(2, seed=1) + np.linspace(0, 80, 336)   # climbing
    _ingest(tenant_a, "ingested:load", y, 3600)
    forecast = services.forecast_refresh(tenant=tenant_a, series="ingested:load", horizon=48, threshold=150.0,
                                         now=NOW)
    assert forecast.model == "seasonal_naive"           # two weeks of history: no boosted model yet
    assert len(forecast.points) == 48
    assert datetime.fromisoformat(forecast.points[0][0]) == NOW
    assert all(lo <= p <= hi for _, p, lo, hi in forecast.points)
    first_over = next(datetime.fromisoformat(t) for t, p, _, _ in forecast.points if p >= 150.0)
    assert forecast.threshold_crossing_at == first_over
    again = services.forecast_refresh(tenant=tenant_a, series="ingested:load", horizon=48, now=NOW)
    assert again.pk == forecast.pk and Forecast.objects.count() == 1


def test_a_registered_source_is_read_and_its_critical_threshold_used(tenant_a):
    calls = []

    def reader(*, tenant, series, start, end, step_s):
        calls.append((tenant, series, step_s))
        return [(end - timedelta(hours=72 - i), 50.0 + i) for i in range(72)]

    sources.register_series_source("cpu_percent", reader, lister=lambda tenant: ["cpu_percent"], critical=90.0)
    try:
        forecast = services.forecast_refresh(tenant=tenant_a, series="cpu_percent", horizon=24, now=NOW)
        assert calls == [(tenant_a, "cpu_percent", 3600)]
        assert forecast.threshold == 90.0
        assert "cpu_percent" in sources.list_series(tenant=tenant_a)
    finally:
        sources.unregister_series_source("cpu_percent")


def test_an_unknown_series_kind_is_a_field_error(tenant_a):
    with pytest.raises(ApplicationError) as err:
        services.forecast_refresh(tenant=tenant_a, series="nope:x", now=NOW)
    assert "series" in err.value.extra["errors"]


def test_a_planted_spike_becomes_one_anomaly_with_its_expected_range(tenant_a):
    y = seasonal_5min(5, seed=7)
    y[-200:-197] += 60
    _ingest(tenant_a, "ingested:rps", y, 300)
    found = services.series_detect(tenant=tenant_a, series="ingested:rps", now=NOW)
    assert len(found) == 1
    anomaly = found[0]
    assert anomaly.value > anomaly.expected_high
    assert anomaly.signals[0]["signal"] == "ingested:rps"
    assert NOW - timedelta(minutes=5 * 200) <= anomaly.started_at <= NOW - timedelta(minutes=5 * 195)
    services.series_detect(tenant=tenant_a, series="ingested:rps", now=NOW)
    assert Anomaly.objects.for_tenant(tenant_a).count() == 1        # the same event, not a second row


def test_endpoint_detection_names_the_signal_that_drove_it(tenant_a):
    register_endpoint_readers()
    try:
        found = services.endpoint_detect(tenant=tenant_a, route="/api/v1/orders/", now=NOW)
    finally:
        for kind in ("endpoint_p95_ms", "endpoint_rps", "endpoint_error_rate"):
            sources.unregister_series_source(kind)
    planted = [a for a in found if a.started_at == NOW - timedelta(minutes=5 * 30)]
    assert len(planted) == 1 and planted[0].kind == "endpoint"
    assert planted[0].signals[0]["signal"] == "endpoint_p95_ms:/api/v1/orders/"
    assert len(found) <= 2      # the event, and at most one false alarm in a day of noise
