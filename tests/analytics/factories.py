"""Factories of the analytics app (found by the tenant-isolation test)."""
from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from apps.analytics.models import Anomaly, Forecast, SeriesPoint
from tests.factories import TenantFactory


def _points(n: int = 3) -> list[list]:
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    return [[(start + timedelta(hours=i + 1)).isoformat(), 10.0 + i, 8.0 + i, 12.0 + i] for i in range(n)]


class SeriesPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeriesPoint

    tenant = factory.SubFactory(TenantFactory)
    series = "ingested:orders"
    timestamp = factory.Sequence(lambda n: timezone.now().replace(microsecond=0) - timedelta(minutes=n + 1))
    value = 1.0


class ForecastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Forecast

    tenant = factory.SubFactory(TenantFactory)
    series = factory.Sequence(lambda n: f"ingested:series-{n}")
    horizon = 3
    model = "seasonal_naive"
    points = factory.LazyFunction(_points)


class AnomalyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Anomaly

    tenant = factory.SubFactory(TenantFactory)
    series = factory.Sequence(lambda n: f"ingested:series-{n}")
    score = 0.8
    started_at = factory.LazyFunction(timezone.now)
    signals = factory.LazyFunction(lambda: [{"signal": "ingested:x", "value": 5.0, "expected": 1.0, "z": 9.0}])
