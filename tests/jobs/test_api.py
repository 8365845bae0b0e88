"""The jobs API: roles, validation, filters, cancel/retry, types, stats, download."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.jobs.models import JobRun
from tests.jobs.factories import JobRunFactory

pytestmark = pytest.mark.django_db
LIST = "/api/v1/jobs/"


def test_operator_submits_and_gets_the_run(tenant_a, token_client):
    response = token_client(tenant_a, "operator").post(
        LIST, {"type": "test.echo", "params": {"count": 2}, "idempotency_key": "k1"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["params"]["count"] == 2
    assert body["submitted_by"]["kind"] == "token"
    run = JobRun.objects.get(pk=body["id"])
    assert run.tenant == tenant_a and run.idempotency_key == "k1"


def test_viewer_may_read_but_not_submit_cancel_or_retry(tenant_a, member_client):
    client = member_client(tenant_a, "viewer")
    run = JobRunFactory(tenant=tenant_a, status="failed")
    assert client.post(LIST, {"type": "test.noop"}, format="json").status_code == 403
    assert client.post(f"{LIST}{run.pk}/retry/").status_code == 403
    assert client.post(f"{LIST}{run.pk}/cancel/").status_code == 403
    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}{run.pk}/").json()["id"] == run.pk
    assert not AuditEvent.objects.filter(action__startswith="jobs.").exists()


def test_anonymous_is_refused(tenant_a, api_client):
    assert api_client.get(LIST).status_code in (401, 403)


def test_bad_params_answer_400_with_field_errors_and_queue_nothing(tenant_a, member_client):
    client = member_client(tenant_a, "operator")
    response = client.post(LIST, {"type": "test.echo", "params": {"count": "many"}}, format="json")
    assert response.status_code == 400
    assert "count" in response.json()["errors"]
    response = client.post(LIST, {"type": "nope", "params": {}}, format="json")
    assert response.status_code == 400 and "type" in response.json()["errors"]
    response = client.post(LIST, {"type": "test.noop", "priority": 1}, format="json")
    assert response.status_code == 400 and "priority" in response.json()["errors"]
    assert not JobRun.objects.exists()


def test_same_idempotency_key_answers_the_same_run(tenant_a, member_client):
    client = member_client(tenant_a, "operator")
    payload = {"type": "test.noop", "params": {}, "idempotency_key": "once"}
    first = client.post(LIST, payload, format="json").json()
    second = client.post(LIST, payload, format="json").json()
    assert first["id"] == second["id"] and JobRun.objects.count() == 1


def test_list_filters_by_type_status_and_date(tenant_a, member_client):
    old = JobRunFactory(tenant=tenant_a, type="test.echo", status="failed",
                        queued_at=timezone.now() - timedelta(days=2))
    new = JobRunFactory(tenant=tenant_a, type="test.noop", status="succeeded")
    client = member_client(tenant_a, "viewer")

    def ids(**query):
        return [row["id"] for row in client.get(LIST, query).json()["results"]]

    assert ids() == [new.pk, old.pk]
    assert ids(type="test.echo") == [old.pk]
    assert ids(status="succeeded") == [new.pk]
    assert ids(queued_after=(timezone.now() - timedelta(days=1)).isoformat()) == [new.pk]
    assert ids(queued_before=(timezone.now() - timedelta(days=1)).isoformat()) == [old.pk]
    response = client.get(LIST, {"status": "exploded"})
    assert response.status_code == 400 and "status" in response.json()["errors"]


def test_cancel_and_retry_through_the_api_are_audited(tenant_a, member_client):
    client = member_client(tenant_a, "operator")
    queued = client.post(LIST, {"type": "test.noop", "params": {}}, format="json").json()
    response = client.post(f"{LIST}{queued['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"{LIST}{queued['id']}/cancel/").status_code == 409
    response = client.post(f"{LIST}{queued['id']}/retry/")
    assert response.status_code == 201 and response.json()["retry_of"] == queued["id"]
    actions = list(AuditEvent.objects.filter(tenant=tenant_a, action__startswith="jobs.")
                   .order_by("id").values_list("action", "actor_kind"))
    assert actions == [("jobs.cancel", "user"), ("jobs.retry", "user")]


def test_types_lists_each_type_with_its_parameter_schema(tenant_a, member_client):
    response = member_client(tenant_a, "viewer").get(f"{LIST}types/")
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()}
    assert {"jobs.retention", "test.echo"} <= set(types)
    schema = types["test.echo"]["params_schema"]
    assert schema["properties"]["count"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert schema["required"] == ["count"] and schema["additionalProperties"] is False
    assert types["jobs.retention"]["schedule"] == "17 3 * * *"


def test_stats_per_type(tenant_a, tenant_b, member_client):
    now = timezone.now()
    for seconds in (1, 2, 3, 4, 10):
        JobRunFactory(tenant=tenant_a, type="test.echo", status="succeeded", started_at=now - timedelta(seconds=60),
                      finished_at=now - timedelta(seconds=60 - seconds))
    JobRunFactory(tenant=tenant_a, type="test.echo", status="failed", finished_at=now)
    JobRunFactory(tenant=tenant_a, type="test.echo", status="failed", finished_at=now - timedelta(hours=2))
    JobRunFactory(tenant=tenant_a, type="test.echo", status="queued", queued_at=now - timedelta(seconds=90))
    JobRunFactory(tenant=tenant_a, type="test.noop", status="running")
    JobRunFactory(tenant=tenant_b, type="test.echo", status="queued")
    body = member_client(tenant_a, "viewer").get(f"{LIST}stats/").json()
    echo = body["types"]["test.echo"]
    assert (echo["queued"], echo["running"], echo["succeeded_1h"], echo["failed_1h"]) == (1, 0, 5, 1)
    assert echo["p50_run_s"] == 3.0 and echo["p95_run_s"] == 10.0
    assert 89 <= echo["oldest_queued_age_s"] < 120
    assert body["types"]["test.noop"]["running"] == 1
    assert set(body["workers"]) == {"clusters", "workers"}


def test_download_serves_the_runs_export_file_only(tenant_a, member_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "a.csv").write_text("id\n1\n")
    (tmp_path / "secret.txt").write_text("no")
    client = member_client(tenant_a, "viewer")
    good = JobRunFactory(tenant=tenant_a, status="succeeded", result={"file": "exports/a.csv"})
    sneaky = JobRunFactory(tenant=tenant_a, status="succeeded", result={"file": "exports/../secret.txt"})
    response = client.get(reverse("v1:job-download", args=[good.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"id\n1\n"
    assert client.get(reverse("v1:job-download", args=[sneaky.pk])).status_code == 404


@pytest.mark.parametrize("type_name, params", [("audit.retention", {"older_than_days": 1}),
                                               ("jobs.retention", {"older_than_days": 1}),
                                               ("ratelimit.stats_retention", {})])
def test_destructive_types_need_the_admin_role_to_submit_or_retry(tenant_a, member_client, type_name, params):
    operator = member_client(tenant_a, "operator")
    response = operator.post(LIST, {"type": type_name, "params": params}, format="json")
    assert response.status_code == 403, response.json()
    assert "needs the admin role" in response.json()["message"]
    assert not JobRun.objects.exists()
    failed = JobRunFactory(tenant=tenant_a, type=type_name, params=params, status="failed")
    assert operator.post(f"{LIST}{failed.pk}/retry/").status_code == 403
    assert list(JobRun.objects.values_list("pk", flat=True)) == [failed.pk]
    assert not AuditEvent.objects.filter(action="jobs.retry").exists()
    admin = member_client(tenant_a, "admin")
    assert admin.post(LIST, {"type": type_name, "params": params}, format="json").status_code == 201
    assert admin.post(f"{LIST}{failed.pk}/retry/").status_code == 201
    types = {t["name"]: t for t in admin.get(f"{LIST}types/").json()}
    assert types[type_name]["submit_role"] == "admin" and types["test.echo"]["submit_role"] == "operator"
