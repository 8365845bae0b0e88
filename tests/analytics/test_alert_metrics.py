"""Analytics' alert rule metric kinds read on real forecasts and anomalies, and the live events the console gets."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.analytics import selectors, services
from apps.analytics.alert_metrics import ANOMALY_SCORE, FORECAST_CROSSING_S
from apps.core import metric_kinds
from apps.core.live import console_group
from tests.analytics.series import register_endpoint_readers, seasonal_5min, seasonal_hourly

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
HOUR = 3600


def _ingest(tenant, series, values, step_s, end=NOW):
    start = end - timedelta(seconds=step_s * len(values))
    points = [(start + timedelta(seconds=step_s * i), float(v)) for i, v in enumerate(values)]
    services.points_ingest(tenant=tenant, series=series, points=points, now=end)


def test_both_kinds_are_registered_at_start_up_with_their_units_and_labels():
    crossing = metric_kinds.get(FORECAST_CROSSING_S)
    score = metric_kinds.get(ANOMALY_SCORE)
    assert (crossing.unit, crossing.labels) == ("seconds", ("series",))
    assert (score.unit, score.labels) == ("score", ("series", "route"))
    assert crossing.read is selectors.forecast_crossing_readings


def test_forecast_crossing_is_the_time_left_until_the_forecast_reaches_the_threshold(tenant_a, tenant_b):
    climbing = seasonal_hourly(2, seed=1) + np.linspace(0, 80, 336)
    _ingest(tenant_a, "ingested:disk", climbing, HOUR)
    _ingest(tenant_a, "ingested:flat", seasonal_hourly(2, seed=2), HOUR)
    _ingest(tenant_b, "ingested:disk", climbing, HOUR)
    forecast = services.forecast_refresh(tenant=tenant_a, series="ingested:disk", horizon=48, threshold=150.0,
                                         now=NOW)
    services.forecast_refresh(tenant=tenant_a, series="ingested:flat", horizon=48, threshold=1e9, now=NOW)
    services.forecast_refresh(tenant=tenant_b, series="ingested:disk", horizon=48, threshold=1.0, now=NOW)
    read = metric_kinds.get(FORECAST_CROSSING_S).read
    later = NOW + timedelta(hours=1)
    readings = read(tenant_a.pk, 300, later)
    # the flat series never reaches its threshold within the horizon: no reading; tenant b's is not here
    assert readings == [({"series": "ingested:disk"}, (forecast.threshold_crossing_at - later).total_seconds())]
    assert 0 < readings[0][1] < 48 * HOUR
    # once the predicted time has come, the figure is 0 (not negative)
    assert read(tenant_a.pk, 300, NOW + timedelta(days=30)) == [({"series": "ingested:disk"}, 0.0)]


def test_anomaly_score_is_the_events_score_during_the_window_then_zero(tenant_a, tenant_b):
    y = seasonal_5min(5, seed=7)
    y[-200:-197] += 60
    _ingest(tenant_a, "ingested:rps", y, 300)
    _ingest(tenant_b, "ingested:rps", y, 300)
    (anomaly,) = services.series_detect(tenant=tenant_a, series="ingested:rps", now=NOW)
    read = metric_kinds.get(ANOMALY_SCORE).read
    at_event = anomaly.started_at + timedelta(minutes=1)
    assert read(tenant_a.pk, 600, at_event) == [({"series": "ingested:rps", "route": ""}, anomaly.score)]
    assert anomaly.score >= 0.45
    assert anomaly.ended_at is not None
    # a window that starts after the event ended sees the series back to normal
    after = anomaly.ended_at + timedelta(hours=2)
    assert read(tenant_a.pk, 3600, after) == [({"series": "ingested:rps", "route": ""}, 0.0)]
    # before the event began there was nothing to report; tenant b never ran detection
    assert read(tenant_a.pk, 600, anomaly.started_at - timedelta(minutes=1)) == []
    assert read(tenant_b.pk, 600, at_event) == []


def test_endpoint_anomalies_are_labelled_with_their_route(tenant_a):
    register_endpoint_readers()
    route = "api/v1/orders/<int:pk>"
    services.series_detect(tenant=tenant_a, series=f"endpoint_p95_ms:POST {route}", now=NOW)
    services.endpoint_detect(tenant=tenant_a, route=route, now=NOW)
    readings = metric_kinds.get(ANOMALY_SCORE).read(tenant_a.pk, 600, NOW - timedelta(minutes=5 * 29))
    labels = [labels for labels, value in readings if value >= 0.45]
    assert {"series": f"endpoint_p95_ms:POST {route}", "route": route} in labels
    assert {"series": f"endpoint:{route}", "route": route} in labels


def _receive(layer, channel):
    async def first():
        return await asyncio.wait_for(layer.receive(channel), timeout=10)
    return async_to_sync(first)()


def test_a_new_anomaly_and_a_refreshed_forecast_are_published_to_the_tenants_console(
        tenant_a, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = console_group(tenant_a.pk)
    async_to_sync(layer.group_add)(group, channel)
    try:
        y = seasonal_5min(5, seed=7)
        y[-200:-197] += 60
        _ingest(tenant_a, "ingested:rps", y, 300)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            (anomaly,) = services.series_detect(tenant=tenant_a, series="ingested:rps", now=NOW)
        assert len(callbacks) == 1
        message = _receive(layer, channel)
        assert message["event"] == "anomaly.detected" and message["tenant"] == tenant_a.pk
        assert message["data"]["id"] == anomaly.pk and message["data"]["series"] == "ingested:rps"
        assert message["data"]["score"] == anomaly.score
        # detecting again over the same history updates the event: no second announcement
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.series_detect(tenant=tenant_a, series="ingested:rps", now=NOW)
        assert callbacks == []
        _ingest(tenant_a, "ingested:load", seasonal_hourly(2, seed=1), HOUR)
        with django_capture_on_commit_callbacks(execute=True):
            forecast = services.forecast_refresh(tenant=tenant_a, series="ingested:load", horizon=24,
                                                 threshold=1e9, now=NOW)
        message = _receive(layer, channel)
        assert message["event"] == "forecast.refreshed"
        assert message["data"] == {"id": forecast.pk, "series": "ingested:load", "horizon": 24,
                                   "model": "seasonal_naive", "generated_at": NOW.isoformat(),
                                   "threshold": 1e9, "threshold_crossing_at": None}
    finally:
        async_to_sync(layer.group_discard)(group, channel)
