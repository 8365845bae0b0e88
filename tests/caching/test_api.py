"""The caching API: policy CRUD with field-level validation, roles, stats, and audited invalidation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.caching import stats
from apps.caching.models import CachePolicy
from tests.caching import views
from tests.caching.factories import CachePolicyFactory, CacheStatMinuteFactory

pytestmark = pytest.mark.django_db

POLICIES = "/api/v1/caching/policies/"
INVALIDATE = "/api/v1/caching/invalidate"


def test_admin_creates_a_policy_and_it_is_audited(tenant_a, token_client):
    response = token_client(tenant_a, "admin").post(POLICIES, {
        "name": "reports", "path_pattern": "^/api/v1/reports/", "ttl_s": 120, "vary_on": "tenant",
        "tags": ["reports", "report:{pk}"], "stale_while_revalidate_s": 30,
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ttl_s"] == 120 and body["tags"] == ["reports", "report:{pk}"]
    policy = CachePolicy.objects.get(pk=body["id"])
    assert policy.tenant == tenant_a
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_caching.cachepolicy", object_id=str(policy.pk), tenant=tenant_a).exists()


@pytest.mark.parametrize("payload, field", [
    ({"name": "x", "path_pattern": "^/a/", "methods": ["POST"]}, "methods"),
    ({"name": "x", "path_pattern": "(unclosed"}, "path_pattern"),
    ({"name": "x", "path_pattern": r"^/(a)\1$"}, "path_pattern"),
    ({"name": "x", "path_pattern": "^/(?!private)"}, "path_pattern"),
    ({"name": "x"}, "route_name"),
    ({"name": "x", "path_pattern": "^/a/", "ttl_s": 0}, "ttl_s"),
    ({"name": "x", "path_pattern": "^/a/", "cacheable_statuses": [99]}, "cacheable_statuses"),
    ({"name": "x", "path_pattern": "^/a/", "tags": ["bad tag"]}, "tags"),
    ({"name": "x", "path_pattern": "^/a/", "tags": ["t:{a.b}"]}, "tags"),
    ({"name": "x", "path_pattern": "^/a/", "vary_headers": ["Bad Header"]}, "vary_headers"),
    ({"name": "x", "path_pattern": "^/a/", "invalidate_on_models": ["nope.Model"]}, "invalidate_on_models"),
    ({"name": "x", "path_pattern": "^/a/", "warm_urls": ["relative/path"]}, "warm_urls"),
    ({"name": "x", "path_pattern": "^/a/", "adaptive_ttl": True, "ttl_min_s": 50, "ttl_max_s": 10}, "ttl_min_s"),
    ({"name": "x", "path_pattern": "^/a/", "vary_on": "everyone"}, "vary_on"),
    ({"name": "x", "path_pattern": "^/a/", "colour": "red"}, "colour"),
    # NaN passes min/max comparisons and used to reach the audit log's JSON: a 500.
    ({"name": "x", "path_pattern": "^/a/", "early_refresh_beta": "nan"}, "early_refresh_beta"),
])
def test_bad_input_is_a_400_with_the_field_and_nothing_is_saved(tenant_a, token_client, payload, field):
    response = token_client(tenant_a, "admin").post(POLICIES, payload, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not CachePolicy.objects.exists()


def test_duplicate_name_in_a_tenant_is_refused_but_allowed_in_another(tenant_a, tenant_b, token_client):
    CachePolicyFactory(tenant=tenant_a, name="reports")
    payload = {"name": "reports", "path_pattern": "^/a/"}
    assert token_client(tenant_a, "admin").post(POLICIES, payload, format="json").status_code == 400
    assert token_client(tenant_b, "admin").post(POLICIES, payload, format="json").status_code == 201


def test_a_name_taken_between_validation_and_save_is_a_400(tenant_a, token_client, monkeypatch):
    # Two concurrent creates both pass full_clean; skipping the constraint check plays the second of them.
    monkeypatch.setattr(CachePolicy, "validate_constraints", lambda self, exclude=None: None)
    client = token_client(tenant_a, "admin")
    payload = {"name": "reports", "path_pattern": "^/r/"}
    assert client.post(POLICIES, payload, format="json").status_code == 201
    response = client.post(POLICIES, payload, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]
    assert CachePolicy.objects.count() == 1


def test_viewer_and_operator_cannot_write_policies(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a)
    for role in ("viewer", "operator"):
        client = token_client(tenant_a, role)
        assert client.get(POLICIES).status_code == 200
        assert client.post(POLICIES, {"name": "x", "path_pattern": "^/a/"}, format="json").status_code == 403
        assert client.patch(f"{POLICIES}{policy.pk}/", {"ttl_s": 5}, format="json").status_code == 403


def test_update_validates_the_whole_policy(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, adaptive_ttl=True, ttl_s=20, ttl_min_s=10, ttl_max_s=30)
    response = token_client(tenant_a, "admin").patch(f"{POLICIES}{policy.pk}/", {"ttl_s": 90}, format="json")
    assert response.status_code == 400
    assert "ttl_s" in response.json()["errors"]
    policy.refresh_from_db()
    assert policy.ttl_s == 20


def test_stats_report_counts_per_minute_and_the_store_memory(tenant_a, token_client, settings):
    settings.ROOT_URLCONF = "tests.caching.urls"
    policy = CachePolicyFactory(tenant=tenant_a, path_pattern="^/items/")
    client = token_client(tenant_a, "viewer")
    client.get("/items/1/")
    client.get("/items/1/")
    client.get("/items/1/")
    response = client.get(f"{POLICIES}{policy.pk}/stats/", {"minutes": 5})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["totals"]["hits"] == 2
    assert body["totals"]["misses"] == 1
    assert body["totals"]["origin_calls_saved"] == 2
    assert body["totals"]["bytes_served"] > 0
    assert body["totals"]["hit_ratio"] == pytest.approx(2 / 3, abs=1e-3)
    assert len(body["per_minute"]) == 1
    assert body["store_memory"]["keys"] >= 1
    assert body["store_memory"]["bytes"] > 0
    assert views.calls["item"] == 1


def test_stats_of_several_flushes_add_up_in_one_minute_row(tenant_a):
    from apps.caching.stats import write

    policy = CachePolicyFactory(tenant=tenant_a)
    minute = int(timezone.now().timestamp() // 60 * 60)
    for _ in range(3):
        write(batch={(tenant_a.pk, policy.pk, minute): {"hits": 2, "misses": 1}})
    row = policy.stat_minutes.get()
    assert (row.hits, row.misses) == (6, 3)


def test_stats_are_read_in_one_query(tenant_a, django_assert_num_queries):
    from apps.caching import selectors

    policy = CachePolicyFactory(tenant=tenant_a)
    minute = timezone.now().replace(second=0, microsecond=0)
    for age in range(3):
        CacheStatMinuteFactory(tenant=tenant_a, policy=policy, minute=minute - timedelta(minutes=age),
                               hits=3, misses=1)
    with django_assert_num_queries(1):
        report = selectors.policy_stats(policy=policy, minutes=60)
    assert (report["totals"]["hits"], report["totals"]["misses"], report["totals"]["hit_ratio"]) == (9, 3, 0.75)


def test_stats_query_is_validated(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a)
    response = token_client(tenant_a, "viewer").get(f"{POLICIES}{policy.pk}/stats/", {"minutes": 0})
    assert response.status_code == 400
    assert "minutes" in response.json()["errors"]


def test_operator_invalidates_tags_and_it_is_audited(tenant_a, token_client):
    response = token_client(tenant_a, "operator").post(INVALIDATE, {"tags": ["reports"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"invalidated": {"tags": ["reports"]}}
    event = AuditEvent.objects.get(action="cache.invalidate")
    assert event.tenant == tenant_a
    assert event.changes == {"tags": ["reports"]}
    assert event.actor_kind == "token"


def test_invalidate_by_policy_names_it_in_the_audit(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a)
    response = token_client(tenant_a, "operator").post(INVALIDATE, {"policy": policy.pk}, format="json")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="cache.invalidate")
    assert (event.object_id, event.changes) == (str(policy.pk), {"policy": policy.name})


def test_viewer_cannot_invalidate(tenant_a, token_client):
    response = token_client(tenant_a, "viewer").post(INVALIDATE, {"all": True}, format="json")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="cache.invalidate").exists()


@pytest.mark.parametrize("payload, field", [
    ({}, "non_field_errors"),
    ({"tags": ["a"], "all": True}, "non_field_errors"),
    ({"tags": []}, "tags"),
    ({"tags": ["bad tag"]}, "tags"),
    ({"policy": 999999}, "policy"),
    ({"everything": True}, "everything"),
])
def test_invalidate_input_is_validated(tenant_a, token_client, payload, field):
    response = token_client(tenant_a, "operator").post(INVALIDATE, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not AuditEvent.objects.filter(action="cache.invalidate").exists()


@pytest.mark.parametrize("url", [INVALIDATE, "/api/v1/caching/warm"])
def test_a_policy_is_named_by_an_integer_id_only(tenant_a, token_client, url):
    policy = CachePolicyFactory(tenant=tenant_a, warm_urls=["/items/1/"])
    client = token_client(tenant_a, "operator")
    for wrong in (policy.pk + 0.5, float(policy.pk), [policy.pk], f"{policy.pk}abc", True):
        response = client.post(url, {"policy": wrong}, format="json")
        assert response.status_code == 400 and "policy" in response.json()["errors"], wrong
    assert not AuditEvent.objects.filter(action__startswith="cache.").exists()


def test_another_tenants_policy_cannot_be_invalidated(tenant_a, tenant_b, token_client):
    other = CachePolicyFactory(tenant=tenant_b)
    response = token_client(tenant_a, "operator").post(INVALIDATE, {"policy": other.pk}, format="json")
    assert response.status_code == 400
    assert "policy" in response.json()["errors"]


def test_unflushed_counts_are_not_lost_between_requests(tenant_a):
    policy = CachePolicyFactory(tenant=tenant_a)
    stats.record(policy, hits=3)
    stats.flush()
    assert policy.stat_minutes.get().hits == 3


def test_cache_path_patterns_run_on_re2_and_a_stored_pattern_it_refuses_is_skipped(tenant_a, caplog):
    from apps.caching.snapshot import policy_snapshot
    from tests.core.test_patterns import ATTACK_PATH, CATASTROPHIC, hang_guard

    CachePolicyFactory(tenant=tenant_a, name="evil", path_pattern=CATASTROPHIC)
    CachePolicyFactory(tenant=tenant_a, name="old", path_pattern=r"^/(items)/\1")  # saved before RE2 was required
    policies = policy_snapshot.get(tenant_a.pk)
    assert sorted(policies.by_name) == ["evil"]
    assert "is broken and not applied" in caplog.text
    with hang_guard():
        assert policies.match(method="GET", path=ATTACK_PATH, route_names=()) is None
    assert policies.match(method="GET", path="/aaa", route_names=()).name == "evil"
