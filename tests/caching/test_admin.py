"""The caching admin: policy forms validated like the API, statistics on the page, audited operator actions."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.caching import services
from apps.caching.models import CachePolicy
from tests.caching.factories import CachePolicyFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:bulwark_caching_cachepolicy_changelist"


def form(**overrides) -> dict:
    data = {
        "name": "reports", "enabled": "on", "route_name": "", "path_pattern": "^/api/v1/reports/", "methods": "[]",
        "ttl_s": "60", "stale_while_revalidate_s": "0", "stale_if_error_s": "0", "ttl_min_s": "10",
        "ttl_max_s": "600", "early_refresh_beta": "0", "vary_on": "role", "vary_headers": "[]",
        "ignored_query_params": "[]", "cacheable_statuses": "[]", "max_body_bytes": "1048576", "tags": '["reports"]',
        "invalidate_on_models": "[]", "warm_urls": "[]",
    }
    data.update(overrides)
    return data


def test_admin_adds_a_policy_for_the_active_tenant(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_caching_cachepolicy_add"), form())
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = CachePolicy.objects.get(name="reports")
    assert policy.tenant == tenant_a and policy.tags == ["reports"]
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_caching.cachepolicy", object_id=str(policy.pk)).exists()


def test_admin_form_refuses_invalid_policies(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_caching_cachepolicy_add"), form(methods='["POST"]'))
    assert response.status_code == 200
    assert "Only GET and HEAD" in response.content.decode()
    assert not CachePolicy.objects.exists()


def test_change_page_shows_last_hour_statistics(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a)
    from apps.caching import stats

    stats.record(policy, hits=7, misses=1, origin_calls_saved=7)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_caching_cachepolicy_change", args=[policy.pk])).content.decode()
    assert "<th>Hits</th><td>7</td>" in page
    assert "<th>Hit ratio</th><td>87.5%</td>" in page


def test_operator_invalidates_selected_policies_and_it_is_audited(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a)
    services.get_or_set("x", lambda: 1, 60, tags=[], tenant=tenant_a)
    client.force_login(make_member(tenant_a, "operator"))
    response = client.post(reverse(CHANGELIST), {"action": "invalidate_policies", "_selected_action": [policy.pk]})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="cache.invalidate")
    assert (event.object_id, event.changes, event.actor_kind) == (str(policy.pk), {"policy": policy.name}, "user")


def test_operator_invalidates_the_whole_tenant_cache(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a)
    services.get_or_set("x", lambda: 1, 60, tenant=tenant_a)
    client.force_login(make_member(tenant_a, "operator"))
    client.post(reverse(CHANGELIST), {"action": "invalidate_tenant", "_selected_action": [policy.pk]})
    assert AuditEvent.objects.get(action="cache.invalidate").changes == {"all": True}
    assert services.get_or_set("x", lambda: 2, 60, tenant=tenant_a) == 2


def test_viewer_is_not_offered_the_operator_actions(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "invalidate_policies" not in page
    client.post(reverse(CHANGELIST), {"action": "invalidate_policies", "_selected_action": [policy.pk]})
    assert not AuditEvent.objects.filter(action="cache.invalidate").exists()


def test_operator_invalidates_tags_through_the_form(tenant_a, make_member, client):
    policy = CachePolicyFactory(tenant=tenant_a)
    services.get_or_set("r7", lambda: 1, 60, tags=["report:7"], tenant=tenant_a)
    services.get_or_set("r8", lambda: 1, 60, tags=["report:8"], tenant=tenant_a)
    client.force_login(make_member(tenant_a, "operator"))
    form_page = client.post(reverse(CHANGELIST), {"action": "invalidate_tags", "_selected_action": [policy.pk]})
    assert form_page.status_code == 200
    assert 'name="tags"' in form_page.content.decode()
    refused = client.post(reverse(CHANGELIST), {"action": "invalidate_tags", "_selected_action": [policy.pk],
                                                "apply": "1", "tags": "bad tag"})
    assert refused.status_code == 200
    assert not AuditEvent.objects.filter(action="cache.invalidate").exists()
    done = client.post(reverse(CHANGELIST), {"action": "invalidate_tags", "_selected_action": [policy.pk],
                                             "apply": "1", "tags": "report:7\n"})
    assert done.status_code == 302
    assert AuditEvent.objects.get(action="cache.invalidate").changes == {"tags": ["report:7"]}
    assert services.get_or_set("r7", lambda: 2, 60, tags=["report:7"], tenant=tenant_a) == 2
    assert services.get_or_set("r8", lambda: 2, 60, tags=["report:8"], tenant=tenant_a) == 1


def test_a_superusers_tag_invalidation_reaches_every_selected_tenant(tenant_a, tenant_b, client):
    from tests.factories import UserFactory

    policies = [CachePolicyFactory(tenant=tenant_a), CachePolicyFactory(tenant=tenant_b)]
    for tenant in (tenant_a, tenant_b):
        services.get_or_set("r7", lambda: 1, 60, tags=["report:7"], tenant=tenant)
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    done = client.post(reverse(CHANGELIST), {"action": "invalidate_tags", "_selected_action": [p.pk for p in policies],
                                             "apply": "1", "tags": "report:7"})
    assert done.status_code == 302
    for tenant in (tenant_a, tenant_b):
        assert services.get_or_set("r7", lambda: 2, 60, tags=["report:7"], tenant=tenant) == 2
    assert AuditEvent.objects.filter(action="cache.invalidate").count() == 2
