"""Retention of breaker history: a service and a job type, tenant-scoped and audited as a system operation."""
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.jobs.services import job_submit
from apps.resilience.models import BreakerEvent, DependencyMinute
from apps.resilience.services import history_purge
from tests.jobs.conftest import run_attempt  # noqa: F401  (fixture)
from tests.resilience.factories import BreakerEventFactory, DependencyMinuteFactory

pytestmark = pytest.mark.django_db


def test_purge_deletes_only_the_tenants_old_history(tenant_a, tenant_b):
    old = timezone.now() - timedelta(days=40)
    BreakerEventFactory(tenant=tenant_a, at=old)
    kept_event = BreakerEventFactory(tenant=tenant_a)
    BreakerEventFactory(tenant=tenant_b, at=old)
    DependencyMinuteFactory(tenant=tenant_a, minute=old)
    kept_minute = DependencyMinuteFactory(tenant=tenant_a, minute=timezone.now().replace(second=0, microsecond=0))
    deleted = history_purge(tenant=tenant_a, older_than=timezone.now() - timedelta(days=30))
    assert deleted == {"events": 1, "minutes": 1}
    assert list(BreakerEvent.objects.for_tenant(tenant_a)) == [kept_event]
    assert list(DependencyMinute.objects.for_tenant(tenant_a)) == [kept_minute]
    assert BreakerEvent.objects.for_tenant(tenant_b).count() == 1
    event = AuditEvent.objects.get(action="resilience.retention")
    assert event.tenant == tenant_a and event.changes["events"] == 1


def test_the_retention_job_runs_as_the_system(tenant_a, run_attempt):  # noqa: F811
    BreakerEventFactory(tenant=tenant_a, at=timezone.now() - timedelta(days=3))
    run = run_attempt(job_submit(job_type="resilience.retention", params={"older_than_days": 2}, tenant=tenant_a))
    assert run.status == "succeeded" and run.result["events"] == 1
    event = AuditEvent.objects.get(action="resilience.retention")
    assert (event.actor_kind, event.actor_id) == ("system", f"job:{run.pk}")


def test_bad_retention_params_are_refused(tenant_a):
    from django.core.exceptions import ValidationError
    from rest_framework.exceptions import ValidationError as DRFValidationError

    with pytest.raises((ValidationError, DRFValidationError)):
        job_submit(job_type="resilience.retention", params={"older_than_days": 0}, tenant=tenant_a)
