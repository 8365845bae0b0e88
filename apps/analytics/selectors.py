"""Reads of analytics."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.analytics.models import Anomaly, Forecast


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
