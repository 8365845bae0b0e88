"""Factories of the resilience models (the isolation test finds them here)."""
from __future__ import annotations

from datetime import UTC, datetime

import factory

from apps.resilience.models import BreakerEvent, BreakerPolicy, DependencyMinute, RetryPolicy
from tests.factories import TenantFactory


class BreakerPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BreakerPolicy

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"dependency-{n}")
    window_size = 20
    minimum_calls = 5
    open_duration_s = 10.0


class RetryPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RetryPolicy

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"retry-{n}")


class BreakerEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BreakerEvent

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"dependency-{n}")
    from_state = "closed"
    to_state = "open"
    reason = "failure rate 60% >= 50%"


class DependencyMinuteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DependencyMinute

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"dependency-{n}")
    minute = factory.Sequence(lambda n: datetime.fromtimestamp(1_700_000_040 + 60 * n, tz=UTC))
    calls = 10
    histogram = factory.LazyFunction(lambda: {"100": 10})
