"""Reads of analytics."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from apps.analytics.conf import analytics_settings
from apps.analytics.models import Anomaly, AnomalyKind, Forecast
from apps.core.errors import ApplicationError


def forecast_list(*, tenant, series: str | None = None, horizon: int | None = None) -> QuerySet[Forecast]:
    """The tenant's stored forecasts; with `horizon`, those that reach at least that far."""
    queryset = Forecast.objects.for_tenant(tenant)
    if series:
        queryset = queryset.filter(series=series)
    if horizon:
        queryset = queryset.filter(horizon__gte=horizon)
    return queryset.order_by("series", "horizon")


def anomaly_list(*, tenant, series: str | None = None, kind: str | None = None, since=None,
                 open_only: bool = False) -> QuerySet[Anomaly]:
    queryset = Anomaly.objects.for_tenant(tenant)
    if series:
        queryset = queryset.filter(series=series)
    if kind:
        queryset = queryset.filter(kind=kind)
    if since:
        queryset = queryset.filter(started_at__gte=since)
    if open_only:
        queryset = queryset.filter(ended_at__isnull=True)
    return queryset.order_by("-started_at")


# --- alert rule metrics (registered in `apps.analytics.alert_metrics`) ------------------------------------------

def forecast_crossing_readings(tenant_id: int, window_s: int, now: datetime) -> list[tuple[dict, float]]:
    """`forecast_crossing_s`: per series, seconds from `now` until its latest forecast reaches the series'
    critical threshold (0 if that time has come). Series whose forecast does not reach it within the horizon
    give no reading. With several horizons stored, the soonest crossing wins. (The window does not apply: a
    forecast is a statement about the future, refreshed by its job.)"""
    soonest: dict[str, datetime] = {}
    rows = (Forecast.objects.filter(tenant_id=tenant_id, threshold_crossing_at__isnull=False)
            .values_list("series", "threshold_crossing_at"))
    for series, crossing in rows:
        if series not in soonest or crossing < soonest[series]:
            soonest[series] = crossing
    return [({"series": series}, max(0.0, (crossing - now).total_seconds()))
            for series, crossing in sorted(soonest.items())]


def anomaly_labels(anomaly_kind: str, series: str) -> dict[str, str]:
    """The labels of `anomaly_score`: a series anomaly on an endpoint key names its route too; an endpoint
    (multivariate) anomaly is the series `endpoint:<route>`."""
    if anomaly_kind == AnomalyKind.ENDPOINT:
        return {"series": f"endpoint:{series}", "route": series}
    if not series.startswith("endpoint_") or ":" not in series:
        return {"series": series, "route": ""}
    from apps.analytics.monitoring_series import parse_endpoint

    try:
        route, _ = parse_endpoint(series)
    except ApplicationError:
        route = ""
    return {"series": series, "route": route}


def anomaly_score_readings(tenant_id: int, window_s: int, now: datetime) -> list[tuple[dict, float]]:
    """`anomaly_score`: per series (and endpoint), the highest score of its anomalies that were going on
    during the window (started before `now`, not ended before the window began); 0 for a series whose
    anomalies ended within the detector's history before the window, so a rule sees it return to normal."""
    window_start = now - timedelta(seconds=window_s)
    lookback = now - timedelta(seconds=max(window_s, analytics_settings.DETECT_HISTORY_HOURS * 3600))
    rows = (Anomaly.objects.filter(tenant_id=tenant_id, started_at__lte=now)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=lookback))
            .values_list("kind", "series", "score", "ended_at"))
    best: dict[tuple[str, str], float] = {}
    for anomaly_kind, series, score, ended_at in rows:
        key = (anomaly_kind, series)
        during = ended_at is None or ended_at >= window_start
        best[key] = max(best.get(key, 0.0), float(score) if during else 0.0)
    return [(anomaly_labels(kind, series), value) for (kind, series), value in sorted(best.items())]
