"""Factories of the alerting app (found by the tenant-isolation test)."""
from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from apps.alerting.models import Alert, AlertRule, Channel, Delivery, Silence
from tests.factories import TenantFactory


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = "dashboard"
    config = factory.LazyFunction(dict)


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"rule-{n}")
    metric = "endpoint_error_rate"
    warning = 0.02
    critical = 0.05


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    tenant = factory.SubFactory(TenantFactory)
    rule = factory.SubFactory(AlertRuleFactory, tenant=factory.SelfAttribute("..tenant"))
    fingerprint = factory.Sequence(lambda n: f"{n:032x}")
    labels = factory.LazyAttribute(lambda a: {"alertname": a.rule.name, "severity": "warning"})
    severity = "warning"
    state = "firing"
    fired_at = factory.LazyFunction(timezone.now)


class SilenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Silence

    tenant = factory.SubFactory(TenantFactory)
    matchers = factory.LazyFunction(lambda: {"alertname": "rule-x"})
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    tenant = factory.SubFactory(TenantFactory)
    channel = factory.SubFactory(ChannelFactory, tenant=factory.SelfAttribute("..tenant"))
    status = "sent"
