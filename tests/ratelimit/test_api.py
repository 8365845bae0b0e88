"""The REST door: policy CRUD with field-level validation, stats, reset-key and the check endpoint."""
from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.ratelimit import decision
from apps.ratelimit.models import RateLimitPolicy
from tests.ratelimit.factories import RateLimitPolicyFactory

pytestmark = pytest.mark.django_db
POLICIES = "/api/v1/ratelimit/policies"
CHECK = "/api/v1/ratelimit/check"


def test_admin_creates_a_policy_and_it_is_audited(tenant_a, member_client):
    response = member_client(tenant_a, "admin").post(POLICIES, {
        "name": "login", "match_kind": "route", "match_value": "admin:login", "methods": "POST",
        "key_kind": "ip", "rate": 10, "period": "minute", "failure_mode": "closed",
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["rate"], body["burst"], body["algorithm"]) == ("login", 10, None, "gcra")
    policy = RateLimitPolicy.objects.get(pk=body["id"])
    assert policy.tenant == tenant_a
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_ratelimit.ratelimitpolicy",
                                     object_id=str(policy.pk)).count() == 1


@pytest.mark.parametrize("change, field", [
    ({"rate": 0}, "rate"),
    ({"rate": -1}, "rate"),
    ({"burst": 0}, "burst"),
    ({"match_kind": "route", "match_value": "v1:does-not-exist"}, "match_value"),
    ({"match_kind": "path", "match_value": "(["}, "match_value"),
    ({"methods": "GET,FETCH"}, "methods"),
    ({"roles": "owner"}, "roles"),
    ({"algorithm": "leaky"}, "algorithm"),
    ({"surprise": 1}, "surprise"),
])
def test_invalid_input_is_a_400_with_a_field_message_and_creates_nothing(tenant_a, member_client, change, field):
    response = member_client(tenant_a, "admin").post(POLICIES, {"name": "p", "rate": 5, **change}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and field in body["errors"], body
    assert not RateLimitPolicy.objects.exists()


def test_duplicate_name_is_a_field_error(tenant_a, member_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="default")
    response = member_client(tenant_a, "admin").post(POLICIES, {"name": "default", "rate": 5}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]


def test_update_validates_and_leaves_the_policy_unchanged_when_refused(tenant_a, member_client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, rate=5)
    client = member_client(tenant_a, "admin")
    assert client.patch(f"{POLICIES}/{policy.pk}", {"rate": 0, "priority": 1}, format="json").status_code == 400
    policy.refresh_from_db()
    assert (policy.rate, policy.priority) == (5, 100)
    assert client.patch(f"{POLICIES}/{policy.pk}", {"rate": 50}, format="json").json()["rate"] == 50


def test_viewers_read_but_do_not_write(tenant_a, member_client):
    policy = RateLimitPolicyFactory(tenant=tenant_a)
    viewer = member_client(tenant_a, "viewer")
    assert viewer.get(POLICIES).status_code == 200
    assert viewer.patch(f"{POLICIES}/{policy.pk}", {"rate": 50}, format="json").status_code == 403
    assert viewer.post(f"{POLICIES}/{policy.pk}/reset-key", {"key": "ip:1.2.3.4"}, format="json").status_code == 403


def test_operator_resets_a_key_and_it_is_audited(tenant_a, token_client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, name="tight", match_kind="named", rate=1)
    decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="client-9", policy="tight")])
    operator = token_client(tenant_a, "operator")
    response = operator.post(f"{POLICIES}/{policy.pk}/reset-key", {"key": "client-9"}, format="json")
    assert response.status_code == 200 and response.json() == {"key": "client-9", "existed": True}
    event = AuditEvent.objects.get(action="ratelimit.reset_key")
    assert event.actor_kind == "token" and event.changes["key"] == "client-9"
    again = decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="client-9", policy="tight")])
    assert again.allowed


def test_stats_endpoint_counts_per_minute(tenant_a, token_client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, name="tight", match_kind="named", rate=2)
    for _ in range(3):
        decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="c", policy="tight")])
    response = token_client(tenant_a, "viewer").get(f"{POLICIES}/{policy.pk}/stats", {"minutes": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["totals"] == {"allowed": 2, "denied": 1, "shadow_denied": 0}
    assert len(body["series"]) == 1 and body["series"][0]["denied"] == 1
    assert token_client(tenant_a, "viewer").get(f"{POLICIES}/{policy.pk}/stats", {"minutes": 0}).status_code == 400


def test_check_answers_allowed_limit_remaining_and_the_deciding_policy(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=5)
    client = token_client(tenant_a, "viewer")
    first = client.post(CHECK, {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 4}]}, format="json")
    assert first.status_code == 200
    body = first.json()
    assert (body["allowed"], body["policy"], body["limit"], body["remaining"], body["retry_after_s"]) == (
        True, "expensive", 5, 1, 0)
    assert body["reset_s"] == 48
    refused = client.post(CHECK, {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 2}]},
                          format="json").json()
    assert (refused["allowed"], refused["remaining"], refused["retry_after_s"]) == (False, 1, 12)


def test_check_reports_shadow_decisions_as_such(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="trial", match_kind="any", methods="POST", rate=1, mode="shadow")
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"key": "u1", "method": "POST", "route": "orders"}]}
    client.post(CHECK, payload, format="json")
    body = client.post(CHECK, payload, format="json").json()
    assert body["allowed"] is True and body["policy"] is None
    assert body["decisions"] == [{"policy": "trial", "key": "u1", "allowed": False, "shadow": True,
                                  "degraded": False, "limit": 1, "remaining": 0, "reset_s": 60,
                                  "retry_after_s": 60}]


@pytest.mark.parametrize("payload, field", [
    ({"descriptors": []}, "descriptors"),
    ({"descriptors": [{"key": "u1"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "x", "method": "GET"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "nope"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "p", "hits": 0}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "method": "GET", "role": "king"}]}, "descriptors"),
    ({}, "descriptors"),
])
def test_check_refuses_bad_descriptors_with_field_messages(tenant_a, token_client, payload, field):
    RateLimitPolicyFactory(tenant=tenant_a, name="p", match_kind="named")
    response = token_client(tenant_a, "viewer").post(CHECK, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_check_needs_a_tenant_principal(client):
    response = client.post(CHECK, {"descriptors": [{"key": "u1", "policy": "p"}]}, content_type="application/json")
    assert response.status_code in (401, 403)


def test_check_costs_no_database_query_once_warm(tenant_a, token_client, django_assert_num_queries):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=5)
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"policy": "expensive", "key": "u1"}]}
    client.post(CHECK, payload, format="json")
    with django_assert_num_queries(0):
        assert client.post(CHECK, payload, format="json").status_code == 200


@pytest.mark.parametrize("descriptor", [{"policy": "expensive", "key": "u1", "hits": 6},
                                        {"route": "v1:me", "key": "u1", "hits": 6}])
def test_check_refuses_more_hits_than_the_policy_can_ever_allow(tenant_a, token_client, descriptor):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="any", rate=5)
    client = token_client(tenant_a, "viewer")
    response = client.post(CHECK, {"descriptors": [{"policy": "expensive", "key": "u1"}, descriptor]}, format="json")
    assert response.status_code == 400, response.json()
    assert "can ever allow at once" in response.json()["errors"]["descriptors"]["1"]["hits"][0]
    # Nothing was taken: the whole burst is still there.
    allowed = client.post(CHECK, {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 5}]}, format="json")
    assert allowed.json()["allowed"] is True and allowed.json()["remaining"] == 0
