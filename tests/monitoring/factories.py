"""Factories of monitoring's tenant-owned models (found by the isolation test)."""
from __future__ import annotations

import factory

from apps.monitoring.models import Endpoint, Thresholds
from tests.factories import TenantFactory


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    tenant = factory.SubFactory(TenantFactory)
    route = factory.Sequence(lambda n: f"api/v1/things/{n}")
    method = "GET"


class ThresholdsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thresholds

    tenant = factory.SubFactory(TenantFactory)
