"""Retention of the per-minute stats: the service, and the job type on its declared daily schedule."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.context import Actor
from apps.jobs import runner
from apps.jobs import services as job_services
from apps.jobs.models import JobSchedule
from apps.jobs.registry import registry
from apps.ratelimit import services
from apps.ratelimit.models import RateLimitStat
from tests.ratelimit.factories import RateLimitStatFactory

pytestmark = pytest.mark.django_db


def minutes_ago(n: int):
    return (timezone.now() - timedelta(minutes=n)).replace(second=0, microsecond=0)


def test_stats_purge_deletes_only_the_tenants_old_minutes_and_audits_it(tenant_a, tenant_b):
    old = RateLimitStatFactory(tenant=tenant_a, minute=minutes_ago(60 * 24 * 40))
    kept = RateLimitStatFactory(tenant=tenant_a, minute=minutes_ago(5))
    other = RateLimitStatFactory(tenant=tenant_b, minute=minutes_ago(60 * 24 * 40))
    deleted = services.stats_purge(tenant=tenant_a, older_than=timezone.now() - timedelta(days=30))
    assert deleted == 1
    assert set(RateLimitStat.objects.values_list("pk", flat=True)) == {kept.pk, other.pk}
    assert not RateLimitStat.objects.filter(pk=old.pk).exists()
    event = AuditEvent.objects.get(action="ratelimit.stats_retention")
    assert event.tenant == tenant_a and event.changes["deleted"] == 1


def test_stats_retention_job_runs_as_an_audited_system_operation(tenant_a, settings):
    settings.BULWARK = {**settings.BULWARK, "RATELIMIT": {**settings.BULWARK.get("RATELIMIT", {}),
                                                          "STATS_RETENTION_DAYS": 2}}
    RateLimitStatFactory(tenant=tenant_a, minute=minutes_ago(60 * 24 * 3))
    RateLimitStatFactory(tenant=tenant_a, minute=minutes_ago(60 * 24 * 1))
    run = job_services.job_submit(job_type="ratelimit.stats_retention", params={}, tenant=tenant_a,
                                  submitted_by=Actor.system(display="test"))
    runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.result["deleted"] == 1
    assert RateLimitStat.objects.count() == 1
    event = AuditEvent.objects.get(action="ratelimit.stats_retention")
    assert (event.actor_kind, event.actor_id) == ("system", f"job:{run.pk}")


def test_stats_retention_is_declared_daily_and_synced_as_a_platform_schedule(tenant_a):
    assert registry["ratelimit.stats_retention"].cron == "27 3 * * *"
    job_services.schedules_sync_all()
    schedule = JobSchedule.objects.get(name="ratelimit.stats_retention", tenant=None)
    assert schedule.declared and schedule.enabled
    runs = job_services.schedule_fire(schedule_pk=schedule.pk)
    assert {r.type for r in runs} == {"ratelimit.stats_retention"} and tenant_a in [r.tenant for r in runs]


def test_stats_retention_refuses_bad_params(tenant_a):
    from rest_framework.exceptions import ValidationError

    for params, field in (({"x": 1}, "x"), ({"older_than_days": 0}, "older_than_days"),
                          ({"older_than_days": "a lot"}, "older_than_days")):
        with pytest.raises(ValidationError) as exc:
            job_services.job_submit(job_type="ratelimit.stats_retention", params=params, tenant=tenant_a)
        assert set(exc.value.detail) == {field}
