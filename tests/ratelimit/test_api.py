"""The REST door: policy CRUD with field-level validation, stats, reset-key and the check endpoint."""
from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.ratelimit import decision, stats
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
    ({"match_kind": "path", "match_value": r"^/(a)\1$"}, "match_value"),
    ({"match_kind": "path", "match_value": "^/(?=admin)"}, "match_value"),
    ({"match_kind": "path", "match_value": "^/" + "a" * 511}, "match_value"),
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
    assert (refused["allowed"], refused["remaining"]) == (False, 1)
    assert 11 < refused["retry_after_s"] <= 12  # seconds as a float: the time since the first call is not rounded
    assert refused["reason"] is None


def test_check_reports_shadow_decisions_as_such(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="trial", match_kind="any", methods="POST", rate=1, mode="shadow")
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"key": "u1", "method": "POST", "route": "orders"}]}
    client.post(CHECK, payload, format="json")
    body = client.post(CHECK, payload, format="json").json()
    assert body["allowed"] is True and body["policy"] is None
    assert 59 < body["decisions"][0].pop("retry_after_s") <= 60
    assert body["decisions"] == [{"descriptor": 0, "policy": "trial", "key": "u1", "allowed": False,
                                  "shadow": True, "degraded": False, "limit": 1, "remaining": 0, "reset_s": 60,
                                  "reason": None}]


@pytest.mark.parametrize("payload, field", [
    ({"descriptors": []}, "descriptors"),
    ({"descriptors": [{"key": "u1"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "x", "method": "GET"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "nope"}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "p", "hits": -1}]}, "descriptors"),
    ({"descriptors": [{"key": "u1", "policy": "p"}], "dry_run": "maybe"}, "dry_run"),
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
def test_more_hits_than_a_policy_can_ever_allow_is_a_denial_with_a_reason_not_a_400(
        tenant_a, token_client, descriptor):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="any", rate=5)
    RateLimitPolicyFactory(tenant=tenant_a, name="other", match_kind="named", rate=5)
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"policy": "other", "key": "u1"}, descriptor]}
    response = client.post(CHECK, payload, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["allowed"], body["policy"], body["retry_after_s"]) == (False, "expensive", None)
    assert "can ever allow at once" in body["reason"]
    answers = {(d["descriptor"], d["policy"]): d for d in body["decisions"]}
    assert answers[(0, "other")]["allowed"] is True and answers[(0, "other")]["remaining"] == 4
    assert answers[(1, "expensive")]["retry_after_s"] is None and answers[(1, "expensive")]["reason"]
    # The batch was refused, so, as for any refusal, nothing was taken from the others either.
    for name in ("expensive", "other"):
        allowed = client.post(CHECK, {"descriptors": [{"policy": name, "key": "u1", "hits": 5}]}, format="json")
        assert allowed.json()["allowed"] is True and allowed.json()["remaining"] == 0


def test_retry_after_s_is_a_float_where_the_header_rounds_up(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="fast", match_kind="named", rate=2, period="second", burst=1)
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"policy": "fast", "key": "u1"}]}
    client.post(CHECK, payload, format="json")
    refused = client.post(CHECK, payload, format="json").json()
    assert refused["allowed"] is False
    assert 0 < refused["retry_after_s"] <= 0.5  # at 2/s a client waits at most half a second, not 1 s


def test_hits_zero_peeks_without_consuming(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=5)
    client = token_client(tenant_a, "viewer")
    take = {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 2}]}
    peek = {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 0}]}
    client.post(CHECK, take, format="json")
    peeks = [client.post(CHECK, peek, format="json").json() for _ in range(3)]
    assert [(p["allowed"], p["remaining"]) for p in peeks] == [(True, 3)] * 3
    assert client.post(CHECK, take, format="json").json()["remaining"] == 1
    stats.flush()
    policy = RateLimitPolicy.objects.get(name="expensive")
    assert policy.stats.get().allowed == 2  # the peeks are not traffic


def test_dry_run_answers_whether_hits_would_pass_and_takes_nothing(tenant_a, token_client):
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=5)
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"policy": "expensive", "key": "u1", "hits": 5}], "dry_run": True}
    for _ in range(3):
        body = client.post(CHECK, payload, format="json").json()
        assert (body["allowed"], body["remaining"]) == (True, 0)
    del payload["dry_run"]
    assert client.post(CHECK, payload, format="json").json()["allowed"] is True


def test_the_check_api_and_the_middleware_share_a_counter_through_one_key_scheme(tenant_a, token_client):
    from apps.tenancy.models import ApiToken

    RateLimitPolicyFactory(tenant=tenant_a, name="default", match_kind="any", key_kind="token", rate=10)
    client = token_client(tenant_a, "viewer")
    for _ in range(3):
        assert client.get("/api/v1/me").status_code == 200
    token = ApiToken.objects.get(tenant=tenant_a)
    peek = {"descriptors": [{"policy": "default", "key": f"token:{token.pk}", "hits": 0}]}
    assert client.post(CHECK, peek, format="json").json()["remaining"] == 7  # the check call itself is exempt
    reset = token_client(tenant_a, "operator").post(
        f"{POLICIES}/{RateLimitPolicy.objects.get(name='default').pk}/reset-key", {"key": f"token:{token.pk}"},
        format="json")
    assert reset.json()["existed"] is True
    assert client.post(CHECK, peek, format="json").json()["remaining"] == 10


def test_decision_endpoints_are_exempt_from_match_any_policies_unless_named(
        tenant_a, token_client, django_capture_on_commit_callbacks):
    RateLimitPolicyFactory(tenant=tenant_a, name="default", match_kind="any", rate=1)
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=100)
    client = token_client(tenant_a, "viewer")
    payload = {"descriptors": [{"policy": "expensive", "key": "u1"}]}
    answers = [client.post(CHECK, payload, format="json") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("RateLimit" not in a for a in answers)
    assert [client.get("/api/v1/me").status_code for _ in range(2)] == [200, 429]  # elsewhere it applies
    with django_capture_on_commit_callbacks(execute=True):  # the snapshot follows the new policy
        RateLimitPolicyFactory(tenant=tenant_a, name="check-calls", match_kind="route",
                               match_value="v1:ratelimit-check", rate=1)
    limited = [client.post(CHECK, payload, format="json").status_code for _ in range(2)]
    assert limited == [200, 429]


def test_moving_window_policies_are_created_and_capped_in_rate(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    created = client.post(POLICIES, {"name": "strict", "algorithm": "moving_window", "rate": 10,
                                     "period": "second"}, format="json")
    assert created.status_code == 201, created.json()
    too_big = client.post(POLICIES, {"name": "huge", "algorithm": "moving_window", "rate": 1001}, format="json")
    assert too_big.status_code == 400 and "at most 1000" in too_big.json()["errors"]["rate"][0]


def test_new_policies_default_to_gcra_and_the_schema_says_sliding_window_is_approximate(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    assert client.post(POLICIES, {"name": "p", "rate": 5}, format="json").json()["algorithm"] == "gcra"
    schema = client.get("/api/schema/?format=json").content.decode()
    assert "Sliding window: a weighted estimate" in schema and "use GCRA for a strict limit" in schema


def test_every_decision_route_is_a_url_name_of_the_project():
    from apps.ratelimit.conf import ratelimit_settings
    from apps.ratelimit.matching import known_route_names

    assert set(ratelimit_settings.DECISION_ROUTES) <= known_route_names()
