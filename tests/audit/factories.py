"""Factories of the audit app: events are written through `record()`, so every one sits in its chain."""
from __future__ import annotations

import factory

from apps.audit.models import AuditEvent
from apps.audit.services import record
from tests.factories import TenantFactory


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    tenant = factory.SubFactory(TenantFactory)
    action = "breaker.force_open"
    object_type = "bulwark_resilience.breakerpolicy"
    object_id = factory.Sequence(str)
    object_repr = factory.Sequence(lambda n: f"payments-{n}")
    changes = factory.LazyFunction(lambda: {"duration_s": 60})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return record(**kwargs)
