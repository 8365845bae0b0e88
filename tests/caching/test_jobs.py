"""Warming through a real `cache.warm` job: submitted by the API or the admin, executed as a worker does."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.jobs import runner
from apps.jobs.models import JobRun
from apps.jobs.services import job_submit
from tests.caching import views
from tests.caching.factories import CachePolicyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]
WARM = "/api/v1/caching/warm"


@pytest.fixture(autouse=True)
def _warm_on_testserver(settings):
    settings.BULWARK = {**settings.BULWARK, "CACHING": {"WARM_BASE_URL": "http://testserver"}}


def execute(run: JobRun) -> JobRun:
    runner.execute(run.pk)
    run.refresh_from_db()
    return run


def test_operator_warms_a_policy_through_the_job(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/items/", warm_urls=["/items/1/", "/items/2/"])
    response = token_client(tenant_a, "operator").post(WARM, {"policy": policy.pk}, format="json")
    assert response.status_code == 202, response.json()
    run = JobRun.objects.get(pk=response.json()["job"])
    assert (run.type, run.params, run.tenant) == ("cache.warm", {"policy": policy.pk}, tenant_a)
    event = AuditEvent.objects.get(action="cache.warm")
    assert event.changes == {"urls": ["/items/1/", "/items/2/"], "job": run.pk}
    run = execute(run)
    assert run.status == "succeeded", run.error
    assert run.result == {"policy": policy.name, "warmed": 2, "failed": []}
    assert run.progress == 100
    viewer = token_client(tenant_a, "viewer")
    assert viewer.get("/items/2/", HTTP_ACCEPT="application/json")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["item"] == 2


@pytest.mark.parametrize("payload, field", [
    ({}, "policy"), ({"policy": 999999}, "policy"), ({"policy": "x"}, "policy"), ({"policy": 1, "x": 1}, "x"),
])
def test_warm_input_is_validated(tenant_a, token_client, payload, field):
    response = token_client(tenant_a, "operator").post(WARM, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not JobRun.objects.exists()


def test_another_tenants_policy_cannot_be_warmed(tenant_a, tenant_b, token_client):
    other = CachePolicyFactory(tenant=tenant_b, vary_on="role", warm_urls=["/items/1/"])
    response = token_client(tenant_a, "operator").post(WARM, {"policy": other.pk}, format="json")
    assert response.status_code == 400
    assert not JobRun.objects.exists()


def test_a_policy_without_warm_urls_is_refused(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role")
    response = token_client(tenant_a, "operator").post(WARM, {"policy": policy.pk}, format="json")
    assert response.status_code == 400
    assert "policy" in response.json()["errors"]


def test_viewer_cannot_warm(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", warm_urls=["/items/1/"])
    assert token_client(tenant_a, "viewer").post(WARM, {"policy": policy.pk}, format="json").status_code == 403


def test_a_run_for_a_deleted_policy_fails_without_retries(tenant_a):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", warm_urls=["/items/1/"])
    run = job_submit(type="cache.warm", params={"policy": policy.pk}, tenant=tenant_a)
    policy.delete()
    run = execute(run)
    assert run.status == "failed"
    assert "no cache policy" in run.error


def test_admin_action_queues_the_job(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", warm_urls=["/items/1/"])
    client.force_login(make_member(tenant_a, "operator"))
    response = client.post(reverse("admin:bulwark_caching_cachepolicy_changelist"),
                           {"action": "warm_policies", "_selected_action": [policy.pk]})
    assert response.status_code == 302
    run = JobRun.objects.get(type="cache.warm")
    assert run.params == {"policy": policy.pk}
    assert execute(run).result["warmed"] == 1
