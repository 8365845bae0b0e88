"""The jobs console: list, run page, retry/cancel actions by role, the submit form, schedules."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.jobs.models import JobRun, JobSchedule
from tests.jobs.factories import JobRunFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:bulwark_jobs_jobrun_changelist"
SUBMIT = "admin:bulwark_jobs_jobrun_submit"


def test_list_shows_status_progress_and_duration(tenant_a, make_member, client):
    JobRunFactory(tenant=tenant_a, status="running", progress=40)
    client.force_login(make_member(tenant_a, "viewer"))
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert "<progress value='40' max='100'" in html and ">running<" in html
    assert "Submit job" not in html  # viewers cannot submit


def test_run_page_shows_params_result_error_and_traceback(tenant_a, make_member, client):
    run = JobRunFactory(tenant=tenant_a, params={"count": 2}, result={"file": "exports/x.csv"},
                        error="Boom", traceback="Traceback (most recent call last): here")
    client.force_login(make_member(tenant_a, "viewer"))
    html = client.get(reverse("admin:bulwark_jobs_jobrun_change", args=[run.pk])).content.decode()
    assert "&quot;count&quot;: 2" in html and "Boom" in html and "most recent call last" in html
    assert reverse("v1:job-download", args=[run.pk]) in html


@pytest.mark.parametrize("role, allowed", [("viewer", False), ("operator", True)])
def test_retry_action_needs_the_operator_role_and_is_audited(tenant_a, make_member, client, role, allowed):
    run = JobRunFactory(tenant=tenant_a, status="failed")
    client.force_login(make_member(tenant_a, role))
    client.post(reverse(CHANGELIST), {"action": "retry_runs", "_selected_action": [run.pk]})
    assert JobRun.objects.filter(retry_of=run).exists() is allowed
    assert AuditEvent.objects.filter(action="jobs.retry", object_id=str(run.pk)).exists() is allowed


def test_cancel_action_cancels_queued_runs_and_reports_refusals(tenant_a, make_member, client):
    queued = JobRunFactory(tenant=tenant_a, status="queued")
    done = JobRunFactory(tenant=tenant_a, status="succeeded")
    client.force_login(make_member(tenant_a, "operator"))
    response = client.post(reverse(CHANGELIST), {"action": "cancel_runs", "_selected_action": [queued.pk, done.pk]},
                           follow=True)
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert "already succeeded" in response.content.decode()
    assert AuditEvent.objects.filter(action="jobs.cancel").count() == 1


def test_submit_form_is_built_from_the_parameter_serializer(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "operator"))
    html = client.get(reverse(SUBMIT), {"type": "test.echo"}).content.decode()
    assert 'name="param_count"' in html and 'name="param_mode"' in html and "<option value=\"slow\"" in html
    response = client.post(f"{reverse(SUBMIT)}?type=test.echo", {"job_type": "test.echo", "param_count": "11"})
    assert response.status_code == 200 and not JobRun.objects.exists()
    assert "less than or equal to 10" in response.content.decode()
    response = client.post(f"{reverse(SUBMIT)}?type=test.echo",
                           {"job_type": "test.echo", "param_count": "4", "param_mode": "slow"})
    run = JobRun.objects.get()
    assert response.status_code == 302 and run.tenant == tenant_a
    assert run.params == {"count": 4, "label": "x", "mode": "slow"} and run.submitted_by_kind == "user"


def test_viewers_cannot_open_the_submit_form(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "viewer"))
    assert client.get(reverse(SUBMIT), {"type": "test.echo"}).status_code == 403


def test_schedules_admin_scopes_to_the_tenant_and_syncs(tenant_a, tenant_b, make_member, client):
    from django_q.models import Schedule

    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_jobs_jobschedule_add"), {
        "name": "echo nightly", "type": "test.echo", "params": '{"count": 2}', "cron": "0 2 * * *",
        "interval_min": "", "enabled": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = JobSchedule.objects.get()
    assert schedule.tenant == tenant_a and schedule.params == {"count": 2, "label": "x", "mode": "fast"}
    assert Schedule.objects.get(name=schedule.q2_name).cron == "0 2 * * *"
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_jobs.jobschedule").exists()
    other = JobSchedule.objects.create(name="theirs", tenant=tenant_b, type="test.noop", interval_min=5)
    assert client.get(reverse("admin:bulwark_jobs_jobschedule_change", args=[other.pk])).status_code == 404


def test_a_superuser_creates_a_platform_schedule(admin_client):
    response = admin_client.post(reverse("admin:bulwark_jobs_jobschedule_add"), {
        "name": "retention everywhere", "tenant": "", "type": "jobs.retention", "params": "{}",
        "cron": "30 4 * * *", "interval_min": "", "enabled": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = JobSchedule.objects.get()
    assert schedule.tenant is None
    html = admin_client.get(reverse("admin:bulwark_jobs_jobschedule_changelist")).content.decode()
    assert "platform (every tenant)" in html


def test_schedule_params_are_validated_in_the_form(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_jobs_jobschedule_add"), {
        "name": "bad echo", "type": "test.echo", "params": '{"count": 0}', "cron": "", "interval_min": "5",
        "enabled": "on",
    })
    assert response.status_code == 200
    assert "count: Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not JobSchedule.objects.exists()


def test_retrying_a_run_of_a_type_that_is_gone_is_refused_with_a_message(tenant_a, make_member, client):
    run = JobRunFactory(tenant=tenant_a, type="removed.type", status="failed")
    client.force_login(make_member(tenant_a, "operator"))
    response = client.post(reverse(CHANGELIST), {"action": "retry_runs", "_selected_action": [run.pk]}, follow=True)
    assert response.status_code == 200 and "Unknown job type" in response.content.decode()
    assert not JobRun.objects.filter(retry_of=run).exists()


@pytest.mark.parametrize("type_name, params", [("test.noop", "5"), ("test.noop", "[1]"), ("test.echo", '"text"')])
def test_schedule_params_that_are_not_an_object_are_a_form_error(tenant_a, make_member, client, type_name, params):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_jobs_jobschedule_add"), {
        "name": "odd params", "type": type_name, "params": params, "cron": "", "interval_min": "5", "enabled": "on",
    })
    assert response.status_code == 200
    assert "Expected an object of parameters" in response.content.decode()
    assert not JobSchedule.objects.exists()


def test_an_operator_cannot_submit_or_retry_audit_retention_from_the_admin(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "operator"))
    response = client.post(reverse(SUBMIT), {"job_type": "audit.retention", "param_older_than_days": "1"})
    assert response.status_code == 200 and "needs the admin role" in response.content.decode()
    assert not JobRun.objects.exists()
    failed = JobRunFactory(tenant=tenant_a, type="audit.retention", params={"older_than_days": 1}, status="failed")
    response = client.post(reverse(CHANGELIST), {"action": "retry_runs", "_selected_action": [failed.pk]}, follow=True)
    assert "needs the admin role" in response.content.decode()
    assert not JobRun.objects.filter(retry_of=failed).exists()
