"""The analytics API: validation in the one error shape, roles, and what the forecasts endpoint serves."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.analytics.models import SeriesPoint
from tests.analytics.factories import AnomalyFactory, ForecastFactory

pytestmark = pytest.mark.django_db
FORECASTS = "/api/v1/analytics/forecasts"
ANOMALIES = "/api/v1/analytics/anomalies"
POINTS = "/api/v1/analytics/points"


def test_forecasts_by_series_and_horizon_cut_the_points_and_answer_the_threshold(tenant_a, token_client):
    mine = ForecastFactory(tenant=tenant_a, series="ingested:a")
    ForecastFactory(tenant=tenant_a, series="ingested:b")
    client = token_client(tenant_a, "viewer")
    body = client.get(FORECASTS, {"series": "ingested:a", "horizon": 2, "threshold": 11}).json()
    assert [row["id"] for row in body["results"]] == [mine.pk]
    row = body["results"][0]
    assert row["horizon"] == 2 and len(row["points"]) == 2
    assert set(row["points"][0]) == {"timestamp", "forecast", "lower80", "upper80"}
    assert row["threshold"] == 11.0
    assert row["threshold_crossing_at"] == mine.points[1][0]
    with_slash = client.get(FORECASTS + "/", {"series": "ingested:a"})
    assert with_slash.status_code == 200


@pytest.mark.parametrize("query, field", [({"horizon": 0}, "horizon"), ({"horizon": 169}, "horizon"),
                                          ({"horizon": "x"}, "horizon"), ({"threshold": "nan"}, "threshold"),
                                          ({"series": "x" * 301}, "series")])
def test_bad_forecast_queries_are_400_on_the_field(tenant_a, token_client, query, field):
    response = token_client(tenant_a, "viewer").get(FORECASTS, query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_anomalies_list_filters_and_validates(tenant_a, token_client):
    AnomalyFactory(tenant=tenant_a, series="ingested:a")
    AnomalyFactory(tenant=tenant_a, series="ingested:b", ended_at=timezone.now())
    client = token_client(tenant_a, "viewer")
    assert [r["series"] for r in client.get(ANOMALIES, {"open": "true"}).json()["results"]] == ["ingested:a"]
    assert client.get(ANOMALIES, {"kind": "bogus"}).json()["errors"].keys() == {"kind"}


def test_operators_push_points_and_viewers_may_not(tenant_a, token_client):
    now = timezone.now().replace(microsecond=0)
    payload = {"series": "ingested:orders", "points": [
        {"timestamp": (now - timedelta(minutes=2)).isoformat(), "value": 1.5},
        {"timestamp": (now - timedelta(minutes=1)).isoformat(), "value": 2}]}
    assert token_client(tenant_a, "viewer").post(POINTS, payload, format="json").status_code == 403
    response = token_client(tenant_a, "operator").post(POINTS, payload, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["written"] == 2
    assert SeriesPoint.objects.for_tenant(tenant_a).count() == 2


@pytest.mark.parametrize("payload, field", [
    ({"series": "cpu_percent", "points": [{"timestamp": "2026-01-01T00:00:00Z", "value": 1}]}, "series"),
    ({"series": "ingested:x", "points": []}, "points"),
    ({"series": "ingested:x", "points": [{"timestamp": "yesterday", "value": 1}]}, "points"),
    ({"series": "ingested:x", "points": [{"timestamp": "2026-01-01T00:00:00Z", "value": "Infinity"}]}, "points"),
    ({"series": "ingested:x", "points": [{"timestamp": "2026-01-01T00:00:00Z", "value": 1, "x": 1}]}, "points"),
    ({"series": "ingested:x", "points": [], "tenant": 3}, "tenant"),
])
def test_bad_points_are_400_and_nothing_is_written(tenant_a, token_client, payload, field):
    response = token_client(tenant_a, "operator").post(POINTS, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not SeriesPoint.objects.exists()


def test_too_many_points_in_one_request_is_400(tenant_a, token_client, settings):
    settings.BULWARK = {**settings.BULWARK, "ANALYTICS": {"INGEST_MAX_POINTS": 2}}
    points = [{"timestamp": f"2026-01-01T00:0{i}:00Z", "value": i} for i in range(3)]
    response = token_client(tenant_a, "operator").post(POINTS, {"series": "ingested:x", "points": points},
                                                       format="json")
    assert response.status_code == 400 and "points" in response.json()["errors"]
    assert not SeriesPoint.objects.exists()


def test_another_tenants_forecast_is_404(tenant_a, tenant_b, token_client):
    theirs = ForecastFactory(tenant=tenant_b)
    response = token_client(tenant_a, "admin").get(f"{FORECASTS}/{theirs.pk}/")
    assert response.status_code == 404
    assert token_client(tenant_a, "admin").get(FORECASTS, {"series": theirs.series}).json()["results"] == []
