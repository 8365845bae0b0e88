"""Factories of the caching app (found by the tenant-isolation test)."""
from __future__ import annotations

import factory
from django.utils import timezone

from apps.caching.models import CachePolicy, CacheStatMinute
from tests.factories import TenantFactory


class CachePolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CachePolicy

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"policy-{n}")
    path_pattern = r"^/items/"
    ttl_s = 60


class CacheStatMinuteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CacheStatMinute

    tenant = factory.SubFactory(TenantFactory)
    policy = factory.SubFactory(CachePolicyFactory, tenant=factory.SelfAttribute("..tenant"))
    minute = factory.LazyFunction(lambda: timezone.now().replace(second=0, microsecond=0))
