"""The audit job types run through the jobs app: export to a file the run links to, and retention."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_verify
from apps.audit.services import record
from apps.jobs.models import JobRun
from apps.jobs.services import job_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def run_attempt():
    from apps.jobs import runner

    def attempt(run):
        runner.execute(run.pk)
        run.refresh_from_db()
        return run

    return attempt


def aged(tenant, days: int, action: str = "old.thing") -> AuditEvent:
    with mock.patch("apps.audit.services.timezone.now", return_value=timezone.now() - timedelta(days=days)):
        return record(action=action, tenant=tenant, changes={"age_days": days})


def test_export_writes_the_tenants_range_to_a_file_the_run_links_to(tenant_a, tenant_b, media, run_attempt,
                                                                     member_client):
    aged(tenant_a, 10, "too.old")
    for days in (5, 4, 3):
        aged(tenant_a, days, "in.range")
    aged(tenant_b, 4, "other.tenant")
    start = (timezone.now() - timedelta(days=6)).isoformat()
    run = run_attempt(job_submit(job_type="audit.export", tenant=tenant_a,
                                 params={"format": "jsonl", "start": start}))
    assert run.status == "succeeded", run.error
    assert run.result["file"] == f"exports/audit-tenant-a-run{run.pk}.jsonl"
    content = (media / run.result["file"]).read_text()
    assert run.result["rows"] == len(content.splitlines()) >= 3
    assert "in.range" in content and "too.old" not in content and "other.tenant" not in content
    assert [p.name for p in (media / "exports").iterdir()] == [f"audit-tenant-a-run{run.pk}.jsonl"]
    response = member_client(tenant_a, "viewer").get(f"/api/v1/jobs/{run.pk}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content).decode() == content
    assert member_client(tenant_b, "admin").get(f"/api/v1/jobs/{run.pk}/download/").status_code == 404


def test_export_parameters_are_validated_at_submission(tenant_a):
    now = timezone.now()
    with pytest.raises(ValidationError) as exc:
        job_submit(job_type="audit.export", tenant=tenant_a,
                   params={"start": now.isoformat(), "end": (now - timedelta(days=1)).isoformat()})
    assert "end" in exc.value.detail
    with pytest.raises(ValidationError) as exc:
        job_submit(job_type="audit.export", tenant=tenant_a, params={"format": "xlsx"})
    assert "format" in exc.value.detail
    assert not JobRun.objects.exists()


def test_a_cancelled_export_stops_and_leaves_no_file(tenant_a, media, run_attempt, monkeypatch):
    monkeypatch.setattr("apps.audit.jobs.PROGRESS_EVERY_ROWS", 1)
    for days in (3, 2, 1):
        aged(tenant_a, days)
    run = job_submit(job_type="audit.export", tenant=tenant_a, params={"format": "csv"})
    JobRun.objects.filter(pk=run.pk).update(cancel_requested=True)  # as if cancelled once it was running
    run = run_attempt(run)
    assert run.status == "cancelled"
    assert list((media / "exports").iterdir()) == []


def test_retention_job_deletes_old_events_as_the_system_and_the_chain_verifies(run_attempt):
    from tests.factories import TenantFactory

    # Retention trims a prefix of the chain, so the tenant (whose creation starts its chain) is old too.
    with mock.patch("apps.audit.services.timezone.now", return_value=timezone.now() - timedelta(days=500)):
        tenant = TenantFactory(slug="old")
    for days in (400, 300):
        aged(tenant, days)
    recent = aged(tenant, 10, "recent.thing")
    run = run_attempt(job_submit(job_type="audit.retention", tenant=tenant, params={"older_than_days": 200}))
    assert run.status == "succeeded", run.error
    assert run.result["deleted"] == 3  # the creation, 400 and 300 days
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    assert not AuditEvent.objects.filter(tenant=tenant, action="old.thing").exists()
    event = AuditEvent.objects.get(tenant=tenant, action="audit.retention")
    assert (event.actor_kind, event.actor_id) == ("system", f"job:{run.pk}")
    assert chain_verify(tenant_id=tenant.pk).ok


def test_retention_needs_an_explicit_age(tenant_a):
    with pytest.raises(ValidationError) as exc:
        job_submit(job_type="audit.retention", tenant=tenant_a, params={})
    assert "older_than_days" in exc.value.detail
