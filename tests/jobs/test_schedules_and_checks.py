"""Schedules mirrored to django-q2 idempotently, schedule ticks, and the startup refusals."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import override_settings
from django_q.models import Schedule

from apps.jobs import services
from apps.jobs.checks import check_q_cluster_timeouts
from apps.jobs.models import JobRun, JobSchedule
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def q2_names() -> list[str]:
    return sorted(Schedule.objects.values_list("name", flat=True))


def test_sync_is_idempotent_and_registers_the_sweep_and_declared_schedules(tenant_a):
    call_command("jobs_sync_schedules", stdout=None)
    first = list(Schedule.objects.order_by("name").values("name", "func", "args", "schedule_type", "cron", "minutes"))
    call_command("jobs_sync_schedules", stdout=None)
    again = list(Schedule.objects.order_by("name").values("name", "func", "args", "schedule_type", "cron", "minutes"))
    assert first == again
    declared = JobSchedule.objects.get(name="jobs.retention", tenant=None)
    assert declared.declared and declared.cron == "17 3 * * *"
    by_name = {row["name"]: row for row in again}
    assert by_name[services.SWEEP_SCHEDULE_NAME]["func"] == "apps.jobs.runner.sweep"
    assert by_name[declared.q2_name] == {"name": declared.q2_name, "func": "apps.jobs.runner.fire_schedule",
                                         "args": repr(declared.pk), "schedule_type": "C", "cron": "17 3 * * *",
                                         "minutes": None}


def test_operator_edits_to_a_declared_schedule_survive_sync(tenant_a):
    services.schedules_sync_all()
    declared = JobSchedule.objects.get(name="jobs.retention", tenant=None)
    declared.cron, declared.enabled = "0 4 * * *", False
    services.schedule_save(schedule=declared)
    assert declared.q2_name not in q2_names()
    services.schedules_sync_all()
    declared.refresh_from_db()
    assert declared.cron == "0 4 * * *" and not declared.enabled
    assert declared.q2_name not in q2_names()


def test_deleted_schedules_lose_their_django_q2_twin(tenant_a):
    schedule = services.schedule_save(schedule=JobSchedule(name="warm", tenant=tenant_a, type="test.noop",
                                                           interval_min=5))
    assert Schedule.objects.get(name=schedule.q2_name).minutes == 5
    JobSchedule.objects.filter(pk=schedule.pk).delete()
    services.schedules_sync_all()
    assert schedule.q2_name not in q2_names()


@pytest.mark.parametrize("fields, field", [
    ({"cron": "", "interval_min": None}, "cron"),
    ({"cron": "* * *", "interval_min": None}, "cron"),
    ({"cron": "* * * * *", "interval_min": 5}, "cron"),
    ({"interval_min": 5, "type": "nope"}, "type"),
])
def test_bad_schedules_are_refused_with_field_errors(tenant_a, fields, field):
    with pytest.raises(ValidationError) as exc:
        services.schedule_save(schedule=JobSchedule(name="bad", tenant=tenant_a, **{"type": "test.noop", **fields}))
    assert field in exc.value.message_dict
    assert not JobSchedule.objects.exists() and not Schedule.objects.exists()


def test_a_tenant_schedule_submits_for_its_tenant_once_per_tick(tenant_a, tenant_b):
    schedule = services.schedule_save(schedule=JobSchedule(name="echo", tenant=tenant_a, type="test.echo",
                                                           params={"count": 1}, interval_min=1))
    runs = services.schedule_fire(schedule_pk=schedule.pk)
    assert [r.tenant for r in runs] == [tenant_a]
    assert runs[0].submitted_by_id == f"schedule:{schedule.pk}"
    services.schedule_fire(schedule_pk=schedule.pk)  # the same minute fired twice
    assert JobRun.objects.count() == 1


def test_a_platform_schedule_submits_for_every_active_tenant(tenant_a, tenant_b):
    TenantFactory(slug="asleep", is_active=False)
    schedule = services.schedule_save(schedule=JobSchedule(name="retention", type="jobs.retention", cron="0 3 * * *"))
    runs = services.schedule_fire(schedule_pk=schedule.pk)
    assert sorted(r.tenant.slug for r in runs) == ["tenant-a", "tenant-b"]


@pytest.fixture
def long_job(monkeypatch):
    from apps.core.job_types import JobType, registry

    monkeypatch.setitem(registry, "test.long", JobType(
        name="test.long", func=lambda ctx, params: None, params=None, timeout_s=650, max_attempts=1,
        queue="default", description=""))


@override_settings(Q_CLUSTER={"timeout": 700, "retry": 650})
def test_startup_refuses_retry_not_above_the_longest_job_timeout(long_job):
    errors = check_q_cluster_timeouts()
    assert [e.id for e in errors] == ["bulwark_jobs.E001"]
    assert "(650 s) must exceed the longest job timeout (650 s of 'test.long')" in errors[0].msg


@override_settings(Q_CLUSTER={"timeout": 600, "retry": 720})
def test_startup_refuses_a_job_timeout_above_the_cluster_timeout(long_job):
    errors = check_q_cluster_timeouts()
    assert [e.id for e in errors] == ["bulwark_jobs.E002"]
    assert "'test.long' has timeout_s=650, more than Q_CLUSTER['timeout'] (600 s)" in errors[0].msg


def test_startup_refuses_a_queue_no_cluster_serves(monkeypatch):
    from apps.core.job_types import JobType, registry

    monkeypatch.setitem(registry, "test.elsewhere", JobType(
        name="test.elsewhere", func=lambda ctx, params: None, params=None, timeout_s=5, max_attempts=1,
        queue="bulk", description=""))
    assert [e.id for e in check_q_cluster_timeouts()] == ["bulwark_jobs.E004"]
    with override_settings(Q_CLUSTER={"timeout": 600, "retry": 720, "ALT_CLUSTERS": {"bulk": {}}}):
        assert check_q_cluster_timeouts() == []


@override_settings(BULWARK={"JOBS": {"LEASE_S": 10, "HEARTBEAT_S": 10}})
def test_startup_refuses_a_heartbeat_not_below_the_lease():
    assert [e.id for e in check_q_cluster_timeouts()] == ["bulwark_jobs.E003"]


def test_the_project_settings_pass_the_checks():
    assert check_q_cluster_timeouts() == []


def test_a_schedule_of_a_disabled_tenant_submits_nothing(tenant_a):
    schedule = services.schedule_save(schedule=JobSchedule(name="echo", tenant=tenant_a, type="test.noop",
                                                           interval_min=1))
    tenant_a.is_active = False
    tenant_a.save()
    assert services.schedule_fire(schedule_pk=schedule.pk) == []
    assert not JobRun.objects.exists()
