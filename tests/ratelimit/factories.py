"""Factories of the rate-limit models (the isolation test finds them here)."""
from __future__ import annotations

import factory
from django.utils import timezone

from apps.ratelimit.models import RateLimitPolicy, RateLimitStat
from tests.factories import TenantFactory


class RateLimitPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RateLimitPolicy

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"policy-{n}")
    match_kind = "named"  # applies to no request unless a test says so: other tests stay unlimited
    key_kind = "user"
    algorithm = "gcra"
    rate = 10
    period = "minute"


class RateLimitStatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RateLimitStat

    tenant = factory.SubFactory(TenantFactory)
    policy = factory.SubFactory(RateLimitPolicyFactory, tenant=factory.SelfAttribute("..tenant"))
    minute = factory.LazyFunction(lambda: timezone.now().replace(second=0, microsecond=0))
    allowed = 3
