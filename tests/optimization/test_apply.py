"""Apply, verify, regress and roll back, through the API (operator, audited), on a fake clock."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.audit.models import AuditEvent
from apps.caching.models import CachePolicy
from apps.core.clock import FakeClock
from apps.optimization import services
from apps.optimization.models import Finding, RequestSample
from tests.optimization.factories import FindingFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/optimization/findings/"


def _traffic(finding, *, start: float, wall_ms: float, n: int = 30) -> None:
    for i in range(n):
        RequestSample.objects.create(
            tenant=finding.tenant, taken_at=datetime.fromtimestamp(start + i * 10, tz=UTC), route=finding.route,
            method=finding.method, status=200, wall_ms=wall_ms, cpu_ms=1, db_ms=1, db_queries=1)


@pytest.fixture
def clock():
    return FakeClock(time=datetime.now(tz=UTC).timestamp())


def test_operator_applies_a_cache_fix_which_is_audited(tenant_a, member_client):
    finding = FindingFactory(tenant=tenant_a)
    response = member_client(tenant_a, "operator").post(f"{URL}{finding.pk}/apply/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "applied"
    policy = CachePolicy.objects.get(tenant=tenant_a, name=finding.fix["data"]["name"])
    assert policy.path_pattern == finding.fix["data"]["path_pattern"]
    actions = set(AuditEvent.objects.filter(tenant=tenant_a).values_list("action", flat=True))
    assert {"create", "optimization.apply"} <= actions


def test_a_viewer_cannot_apply(tenant_a, member_client):
    finding = FindingFactory(tenant=tenant_a)
    assert member_client(tenant_a, "viewer").post(f"{URL}{finding.pk}/apply/").status_code == 403
    assert not CachePolicy.objects.exists()


def test_a_code_finding_is_not_applied_automatically(tenant_a, member_client):
    finding = FindingFactory(tenant=tenant_a, kind="missing_index", fix={"statement": "CREATE INDEX CONCURRENTLY x"})
    response = member_client(tenant_a, "operator").post(f"{URL}{finding.pk}/apply/")
    assert response.status_code == 400
    assert response.json()["code"] == "not_applicable"
    assert Finding.objects.get(pk=finding.pk).status == "open"


def test_applying_twice_conflicts(tenant_a, member_client):
    finding = FindingFactory(tenant=tenant_a)
    client = member_client(tenant_a, "operator")
    assert client.post(f"{URL}{finding.pk}/apply/").status_code == 200
    assert client.post(f"{URL}{finding.pk}/apply/").status_code == 409
    assert CachePolicy.objects.count() == 1


def test_a_faster_route_after_one_window_is_verified(tenant_a, clock):
    finding = FindingFactory(tenant=tenant_a)
    now = clock.time()
    _traffic(finding, start=now - 600, wall_ms=100)
    services.finding_apply(finding=finding, clock=clock)
    _traffic(finding, start=now + 1, wall_ms=10)
    clock.advance(300)
    assert services.findings_verify(now=clock.time()) == []  # the window has not passed yet
    clock.advance(900)
    services.findings_verify(now=clock.time())
    finding.refresh_from_db()
    assert finding.status == "verified"
    assert finding.before["p95_ms"] == 100 and finding.after["p95_ms"] == 10
    assert AuditEvent.objects.filter(action="optimization.verified").count() == 1


def test_a_slower_route_is_regressed_and_rolled_back(tenant_a, member_client, clock):
    finding = FindingFactory(tenant=tenant_a)
    now = clock.time()
    _traffic(finding, start=now - 600, wall_ms=50)
    services.finding_apply(finding=finding, clock=clock)
    _traffic(finding, start=now + 1, wall_ms=80)
    clock.advance(1200)
    services.findings_verify(now=clock.time())
    finding.refresh_from_db()
    assert finding.status == "regressed"
    response = member_client(tenant_a, "operator").post(f"{URL}{finding.pk}/rollback/")
    assert response.status_code == 200
    assert response.json()["status"] == "open"
    assert not CachePolicy.objects.exists()
    assert AuditEvent.objects.filter(action="optimization.rollback").count() == 1


def test_rollback_of_an_update_restores_the_previous_values(tenant_a):
    policy = CachePolicy.objects.create(tenant=tenant_a, name="poor", path_pattern="^/a/", ttl_s=5)
    finding = FindingFactory(tenant=tenant_a, kind="cache_poor_hit_ratio",
                             fix={"policy": "cache", "update": policy.pk, "data": {"ttl_s": 20}})
    services.finding_apply(finding=finding)
    assert CachePolicy.objects.get(pk=policy.pk).ttl_s == 20
    services.finding_rollback(finding=finding)
    assert CachePolicy.objects.get(pk=policy.pk).ttl_s == 5


def test_list_filters_and_validation(tenant_a, member_client):
    FindingFactory(tenant=tenant_a, kind="uncached_hot_read")
    FindingFactory(tenant=tenant_a, kind="n_plus_one", fix={"change": "select_related"})
    client = member_client(tenant_a, "viewer")
    body = client.get(URL, {"kind": "n_plus_one"}).json()
    assert [row["kind"] for row in body["results"]] == ["n_plus_one"]
    bad = client.get(URL, {"kind": "nope"})
    assert bad.status_code == 400
    assert "kind" in str(bad.json())


def test_triage_dismisses_and_validates(tenant_a, member_client):
    finding = FindingFactory(tenant=tenant_a)
    client = member_client(tenant_a, "operator")
    assert client.post(f"{URL}{finding.pk}/triage/", {"status": "applied"}, format="json").status_code == 400
    assert client.post(f"{URL}{finding.pk}/triage/", {"status": "dismissed"}, format="json").status_code == 200
    assert Finding.objects.get(pk=finding.pk).status == "dismissed"
    assert AuditEvent.objects.filter(action="optimization.triage").count() == 1


def test_another_tenants_finding_is_404_and_untouched(tenant_a, tenant_b, member_client):
    other = FindingFactory(tenant=tenant_b)
    assert member_client(tenant_a, "operator").post(f"{URL}{other.pk}/apply/").status_code == 404
    assert Finding.objects.get(pk=other.pk).status == "open"
    assert not CachePolicy.objects.exists()


def test_a_finding_without_a_method_is_timed_on_every_method_of_its_route(tenant_a, clock):
    """A rate limit's finding names a route but no method: its requests are still its evidence."""
    from apps.ratelimit.models import RateLimitPolicy

    policy = RateLimitPolicy.objects.create(tenant=tenant_a, name="harsh", rate=10, mode="shadow")
    finding = FindingFactory(tenant=tenant_a, kind="ratelimit_shadow_impact", method="",
                             fix={"policy": "ratelimit", "update": policy.pk, "data": {"mode": "enforce"}})
    now = clock.time()
    for method, wall_ms in (("GET", 40), ("POST", 60)):
        for i in range(15):
            RequestSample.objects.create(tenant=tenant_a, taken_at=datetime.fromtimestamp(now - 600 + i, tz=UTC),
                                         route=finding.route, method=method, status=200, wall_ms=wall_ms, cpu_ms=1,
                                         db_ms=1, db_queries=1)
    services.finding_apply(finding=finding, clock=clock)
    finding.refresh_from_db()
    assert finding.before["samples"] == 30
    assert finding.before["p95_ms"] == 60


def test_a_breaker_finding_is_timed_on_the_requests_that_called_through_it(tenant_a, clock):
    finding = FindingFactory(tenant=tenant_a, kind="breaker_flapping", route="-", method="",
                             evidence={"summary": "opened 4 times", "breaker": "payments"})
    now = clock.time()
    Finding.objects.filter(pk=finding.pk).update(last_seen_at=datetime.fromtimestamp(now - 60, tz=UTC))
    for i, (breaker, wall_ms) in enumerate([("payments", 30)] * 20 + [("search", 500)] * 5 + [(None, 900)] * 5):
        RequestSample.objects.create(
            tenant=tenant_a, taken_at=datetime.fromtimestamp(now - 600 + i, tz=UTC), route=f"r{i % 3}/", method="GET",
            status=200, wall_ms=wall_ms, cpu_ms=1, db_ms=1, db_queries=1,
            calls=[{"host": "h", "ms": 5, "timeout_s": 1, "status": 200, "error": "", "breaker": breaker}])
    services.finding_apply(finding=finding, clock=clock)
    finding.refresh_from_db()
    assert (finding.before["samples"], finding.before["p95_ms"]) == (20, 30)
    clock.advance(1200)
    services.findings_verify(now=clock.time())
    finding.refresh_from_db()
    assert finding.status == "verified"  # not found again: a system-wide finding is judged on that
    assert finding.after["found_again"] is False and "requests" in finding.after
