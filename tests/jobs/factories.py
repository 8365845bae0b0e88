"""Factories of the jobs app (the isolation test finds them here)."""
from __future__ import annotations

import factory

from apps.jobs.models import JobRun, JobSchedule
from tests.factories import TenantFactory


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    tenant = factory.SubFactory(TenantFactory)
    type = "test.noop"
    params = factory.LazyFunction(dict)
    status = JobRun.Status.FAILED
    max_attempts = 1
    attempts = 1


class JobScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobSchedule

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"schedule-{n}")
    type = "test.noop"
    interval_min = 5
