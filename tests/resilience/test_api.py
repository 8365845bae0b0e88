"""The resilience API: policy validation, roles, operator actions with audit, decision endpoints, scorecard."""
from __future__ import annotations

import time

import pytest

from apps.audit.models import AuditEvent
from apps.core import histogram
from apps.resilience.api import serializers as s
from apps.resilience.models import BreakerPolicy, RetryPolicy
from apps.resilience.runtime import get_breaker
from tests.resilience.factories import BreakerPolicyFactory, DependencyMinuteFactory

BASE = "/api/v1/resilience"


@pytest.fixture
def admin_client(member_client, tenant_a):
    return member_client(tenant_a, "admin")


def test_create_a_breaker_policy_and_read_it_back(admin_client, tenant_a):
    response = admin_client.post(f"{BASE}/policies/", {
        "name": "payments", "window_kind": "time", "window_size": 60, "failure_rate_threshold_pct": 40,
        "failure_exceptions": ["httpx.ConnectError"], "failure_statuses": [502, 503],
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "payments" and body["forced_state"] == "none"
    policy = BreakerPolicy.objects.get(pk=body["id"])
    assert policy.tenant == tenant_a
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_resilience.breakerpolicy", object_id=str(policy.pk)).exists()


@pytest.mark.parametrize(("data", "field"), [
    ({"failure_rate_threshold_pct": 0}, "failure_rate_threshold_pct"),
    ({"failure_rate_threshold_pct": 101}, "failure_rate_threshold_pct"),
    ({"half_open_probes": 0}, "half_open_probes"),
    ({"slow_call_rate_threshold_pct": 150}, "slow_call_rate_threshold_pct"),
    ({"window_kind": "sliding"}, "window_kind"),
    ({"failure_exceptions": ["no.such.Error"]}, "failure_exceptions"),
    ({"failure_exceptions": ["os.path"]}, "failure_exceptions"),
    ({"failure_statuses": [700]}, "failure_statuses"),
    ({"open_duration_s": 100, "max_open_duration_s": 10}, "max_open_duration_s"),
    ({"failure_statuses": [503], "ignored_statuses": [503]}, "ignored_statuses"),
    ({"name": "has space"}, "name"),
    ({"forced_state": "forced_open"}, "forced_state"),  # only operator actions change it
    ({"surprise": 1}, "surprise"),
    # NaN passes min/max comparisons and NaN/infinity used to reach the audit log's JSON: a 500.
    ({"open_duration_s": "nan"}, "open_duration_s"),
    ({"open_duration_s": "Infinity", "max_open_duration_s": "Infinity"}, "open_duration_s"),
    ({"open_duration_s": 1e300, "max_open_duration_s": 1e300}, "open_duration_s"),
    ({"open_duration_multiplier": "nan"}, "open_duration_multiplier"),
    ({"max_open_duration_s": "nan"}, "max_open_duration_s"),
    ({"timeout_s": "nan"}, "timeout_s"),
    ({"timeout_s": 1e12}, "timeout_s"),
    ({"window_kind": "time", "window_size": 60, "minimum_calls": 100_001}, "minimum_calls"),
    ({"consecutive_failures": 100_001}, "consecutive_failures"),
])
def test_invalid_breaker_policies_answer_field_errors_and_create_nothing(admin_client, data, field):
    response = admin_client.post(f"{BASE}/policies/", {"name": "payments", **data}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not BreakerPolicy.objects.exists()


def test_names_are_unique_per_tenant(admin_client, tenant_a, tenant_b):
    BreakerPolicyFactory(tenant=tenant_b, name="payments")
    assert admin_client.post(f"{BASE}/policies/", {"name": "payments"}, format="json").status_code == 201
    response = admin_client.post(f"{BASE}/policies/", {"name": "payments"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]


@pytest.mark.parametrize("path", ["policies", "retry-policies"])
def test_a_name_taken_between_validation_and_save_is_a_400(admin_client, monkeypatch, path):
    # Two concurrent creates both pass validation; skipping the checks plays the second of them.
    model = BreakerPolicy if path == "policies" else RetryPolicy
    monkeypatch.setattr(model, "validate_constraints", lambda self, exclude=None: None)
    monkeypatch.setattr(s.BreakerPolicyInputSerializer, "validate_name", lambda self, name: name)
    monkeypatch.setattr(s.RetryPolicyInputSerializer, "validate_name", lambda self, name: name)
    assert admin_client.post(f"{BASE}/{path}/", {"name": "payments"}, format="json").status_code == 201
    response = admin_client.post(f"{BASE}/{path}/", {"name": "payments"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]
    assert model.objects.count() == 1


def test_update_is_validated_against_the_stored_values(admin_client, tenant_a):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="p", open_duration_s=10, max_open_duration_s=60)
    response = admin_client.patch(f"{BASE}/policies/{policy.pk}/", {"open_duration_s": 120}, format="json")
    assert response.status_code == 400 and "max_open_duration_s" in response.json()["errors"]
    policy.refresh_from_db()
    assert policy.open_duration_s == 10


@pytest.mark.parametrize(("data", "field"), [
    ({"max_attempts": 0}, "max_attempts"),
    ({"backoff_base_ms": 500, "backoff_cap_ms": 100}, "backoff_cap_ms"),
    ({"budget_pct": 0, "attempt_timeout_ms": 5000, "backoff_cap_ms": 2000}, "attempt_timeout_ms"),
    ({"budget_pct": 101}, "budget_pct"),
    ({"retry_exceptions": ["nope"]}, "retry_exceptions"),
])
def test_invalid_retry_policies_answer_field_errors(admin_client, data, field):
    response = admin_client.post(f"{BASE}/retry-policies/", {"name": "r", **data}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not RetryPolicy.objects.exists()


def test_a_retry_policy_with_a_budget_may_have_a_long_attempt_timeout(admin_client):
    response = admin_client.post(f"{BASE}/retry-policies/", {
        "name": "r", "budget_pct": 10, "attempt_timeout_ms": 5000, "backoff_cap_ms": 2000}, format="json")
    assert response.status_code == 201


def test_viewers_read_but_cannot_configure_or_operate(member_client, tenant_a):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="p")
    viewer = member_client(tenant_a, "viewer")
    assert viewer.get(f"{BASE}/policies/").status_code == 200
    assert viewer.post(f"{BASE}/policies/", {"name": "x"}, format="json").status_code == 403
    assert viewer.post(f"{BASE}/policies/{policy.pk}/force-open/").status_code == 403
    assert viewer.post(f"{BASE}/breakers/p/acquire/").status_code == 403


@pytest.mark.parametrize(("action", "forced_state", "audit_action"), [
    ("force-open", "forced_open", "breaker.force_open"),
    ("force-close", "forced_closed", "breaker.force_close"),
    ("disable", "disabled", "breaker.disable"),
    ("metrics-only", "metrics_only", "breaker.metrics_only"),
])
def test_operators_force_states_and_each_action_is_audited(member_client, tenant_a, action, forced_state,
                                                         audit_action):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="p")
    operator = member_client(tenant_a, "operator")
    response = operator.post(f"{BASE}/policies/{policy.pk}/{action}/")
    assert response.status_code == 200, response.json()
    assert response.json()["forced_state"] == forced_state
    policy.refresh_from_db()
    assert policy.forced_state == forced_state
    event = AuditEvent.objects.get(action=audit_action)
    assert event.object_id == str(policy.pk) and event.changes == {"forced_state": ["none", forced_state]}
    assert event.actor_kind == "user" and event.tenant == tenant_a
    assert not AuditEvent.objects.filter(action="update", object_id=str(policy.pk)).exists()


def test_reset_is_audited_and_closes_the_breaker(member_client, tenant_a, fresh_registry):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=1)
    breaker = get_breaker("p", tenant_a)
    breaker.record(breaker.acquire(), "failure", duration_s=0.01)
    fresh_registry.flush_all()
    assert breaker.state == "open"
    response = member_client(tenant_a, "operator").post(f"{BASE}/policies/{policy.pk}/reset/")
    assert response.status_code == 200 and response.json()["state"] == "closed"
    event = AuditEvent.objects.get(action="breaker.reset")
    assert event.changes["state"] == ["open", "closed"]


def test_acquire_and_report_open_the_breaker_for_other_languages(token_client, tenant_a, fresh_registry, clock):
    BreakerPolicyFactory(tenant=tenant_a, name="payments", consecutive_failures=2, open_duration_s=30)
    client = token_client(tenant_a, "operator")
    decision = client.post(f"{BASE}/breakers/payments/acquire/").json()
    assert decision["permitted"] is True and decision["state"] == "closed" and decision["probe"] is False
    for _ in range(2):
        response = client.post(f"{BASE}/breakers/payments/report/", {"outcome": "failure", "duration_ms": 12.5},
                               format="json")
        assert response.status_code == 202 and response.json() == {"accepted": 1, "expired_probes": 0}
    fresh_registry.flush_all()
    decision = client.post(f"{BASE}/breakers/payments/acquire/").json()
    assert decision["permitted"] is False and decision["state"] == "open"
    assert decision["retry_after_s"] == pytest.approx(30)
    clock.advance(30)
    decision = client.post(f"{BASE}/breakers/payments/acquire/").json()
    assert decision["permitted"] is True and decision["probe"] is True and decision["state"] == "half_open"
    client.post(f"{BASE}/breakers/payments/report/", {"outcome": "success", "duration_ms": 3, "probe": True},
                format="json")
    live = client.get(f"{BASE}/breakers/payments/").json()
    assert live["state"] == "closed"


def test_batch_report_counts_many_outcomes_in_one_call(token_client, tenant_a, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="a", window_size=10, minimum_calls=4)
    BreakerPolicyFactory(tenant=tenant_a, name="b", window_size=10, minimum_calls=4)
    client = token_client(tenant_a, "operator")
    reports = [{"name": "a", "outcome": "failure", "duration_ms": 5}] * 4 + \
              [{"name": "b", "outcome": "success", "duration_ms": 5, "cost": 0.002}] * 3
    response = client.post(f"{BASE}/breakers/report/", {"reports": reports}, format="json")
    assert response.status_code == 202 and response.json() == {"accepted": 7, "expired_probes": 0}
    fresh_registry.flush_all()
    rows = {row["name"]: row for row in client.get(f"{BASE}/breakers/").json()["results"]}
    assert rows["a"]["state"] == "open" and rows["a"]["failure_rate_pct"] == 100.0
    assert rows["b"]["state"] == "closed" and rows["b"]["calls"] == 3


def test_batch_report_with_an_unknown_name_counts_nothing(token_client, tenant_a, tenant_b, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="a")
    BreakerPolicyFactory(tenant=tenant_b, name="theirs")
    client = token_client(tenant_a, "operator")
    reports = [{"name": "a", "outcome": "failure", "duration_ms": 5}, {"name": "theirs", "outcome": "failure",
                                                                       "duration_ms": 5}]
    response = client.post(f"{BASE}/breakers/report/", {"reports": reports}, format="json")
    assert response.status_code == 404
    fresh_registry.flush_all()
    assert get_breaker("a", tenant_a).figures.calls == 0


@pytest.mark.parametrize("body", [
    {"outcome": "maybe", "duration_ms": 1},
    {"outcome": "failure", "duration_ms": -1},
    {"outcome": "failure"},
    {"outcome": "failure", "duration_ms": 1, "extra": True},
])
def test_bad_reports_answer_400(token_client, tenant_a, body):
    BreakerPolicyFactory(tenant=tenant_a, name="a")
    response = token_client(tenant_a, "operator").post(f"{BASE}/breakers/a/report/", body, format="json")
    assert response.status_code == 400 and response.json()["errors"]


@pytest.mark.parametrize(("body", "field"), [
    ({"outcome": "success", "duration_ms": "nan"}, "duration_ms"),
    ({"outcome": "success", "duration_ms": 1, "cost": "nan"}, "cost"),
    ({"outcome": "success", "duration_ms": 1, "cost": "Infinity"}, "cost"),
    ({"outcome": "success", "duration_ms": 1, "cost": 1e308}, "cost"),
])
def test_non_finite_reports_are_refused_and_cannot_poison_the_scorecard(token_client, tenant_a, fresh_registry,
                                                                        clock, body, field):
    clock.advance(time.time() - clock.time())  # the scorecard API looks at the last minutes of real time
    BreakerPolicyFactory(tenant=tenant_a, name="a")
    client = token_client(tenant_a, "operator")
    response = client.post(f"{BASE}/breakers/a/report/", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    batch = client.post(f"{BASE}/breakers/report/", {"reports": [{"name": "a", **body}]}, format="json")
    assert batch.status_code == 400
    assert client.post(f"{BASE}/breakers/a/report/", {"outcome": "success", "duration_ms": 3, "cost": 0.5},
                       format="json").status_code == 202
    fresh_registry.flush_all()
    card = client.get(f"{BASE}/dependencies/a/scorecard")
    assert card.status_code == 200 and card.json()["total"]["cost_per_call"] == 0.5


def test_batch_report_refuses_an_empty_or_huge_batch(token_client, tenant_a):
    client = token_client(tenant_a, "operator")
    assert client.post(f"{BASE}/breakers/report/", {"reports": []}, format="json").status_code == 400
    many = [{"name": "a", "outcome": "success", "duration_ms": 1}] * 1001
    assert client.post(f"{BASE}/breakers/report/", {"reports": many}, format="json").status_code == 400


def test_another_tenants_breaker_is_404_by_name(token_client, tenant_a, tenant_b):
    BreakerPolicyFactory(tenant=tenant_b, name="theirs")
    client = token_client(tenant_a, "operator")
    assert client.post(f"{BASE}/breakers/theirs/acquire/").status_code == 404
    assert client.get(f"{BASE}/breakers/theirs/").status_code == 404
    assert client.get(f"{BASE}/dependencies/theirs/scorecard").status_code == 404


def test_scorecard_per_minute_with_quantiles_and_cost(token_client, tenant_a):
    from django.utils import timezone

    minute = timezone.now().replace(second=0, microsecond=0)
    DependencyMinuteFactory(tenant=tenant_a, name="payments", minute=minute, calls=4, failures=1, rejected=2,
                            duration_ms_sum=400.0, cost_sum=0.04, cost_calls=4,
                            histogram={str(histogram.bucket_of(100.0)): 3, str(histogram.bucket_of(200.0)): 1})
    body = token_client(tenant_a, "viewer").get(f"{BASE}/dependencies/payments/scorecard?minutes=5").json()
    total = body["total"]
    assert (total["calls"], total["failures"], total["rejected"]) == (4, 1, 2)
    assert total["success_rate_pct"] == 75.0 and total["avg_ms"] == 100.0 and total["cost_per_call"] == 0.01
    assert total["p50_ms"] == pytest.approx(100.0, rel=histogram.RELATIVE_ERROR)
    assert len(body["per_minute"]) == 1


def test_scorecard_query_is_validated(token_client, tenant_a):
    DependencyMinuteFactory(tenant=tenant_a, name="payments")
    response = token_client(tenant_a, "viewer").get(f"{BASE}/dependencies/payments/scorecard?minutes=0")
    assert response.status_code == 400 and "minutes" in response.json()["errors"]


def test_events_list_shows_transitions(token_client, tenant_a, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=1)
    breaker = get_breaker("p", tenant_a)
    breaker.record(breaker.acquire(), "failure", duration_s=0.01)
    fresh_registry.flush_all()
    rows = token_client(tenant_a, "viewer").get(f"{BASE}/events/").json()["results"]
    assert [(r["name"], r["from_state"], r["to_state"]) for r in rows] == [("p", "closed", "open")]


def test_live_list_is_pinned_in_queries(token_client, tenant_a, django_assert_max_num_queries):
    for n in range(5):
        BreakerPolicyFactory(tenant=tenant_a, name=f"p{n}")
    client = token_client(tenant_a, "viewer")
    with django_assert_max_num_queries(8):
        assert len(client.get(f"{BASE}/breakers/").json()["results"]) == 5


def test_acquire_is_pinned_in_queries(token_client, tenant_a, django_assert_max_num_queries):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    client = token_client(tenant_a, "operator")
    client.post(f"{BASE}/breakers/payments/acquire/")  # compiles the tenant's policies once
    with django_assert_max_num_queries(4):  # the token, its last use, the policy by name
        assert client.post(f"{BASE}/breakers/payments/acquire/").json()["permitted"] is True


@pytest.mark.parametrize(("forced_state", "permitted"), [
    ("forced_open", False), ("forced_closed", True), ("disabled", True), ("metrics_only", True),
])
def test_acquire_answers_forced_states(token_client, tenant_a, forced_state, permitted):
    BreakerPolicyFactory(tenant=tenant_a, name="payments", forced_state=forced_state)
    decision = token_client(tenant_a, "operator").post(f"{BASE}/breakers/payments/acquire/").json()
    assert (decision["permitted"], decision["state"]) == (permitted, forced_state)


def test_thresholds_are_decimals_and_round_trip_as_numbers(admin_client, tenant_a):
    response = admin_client.post(f"{BASE}/policies/", {
        "name": "payments", "failure_rate_threshold_pct": 50.5, "slow_call_rate_threshold_pct": 12.25,
        "half_open_mode": "rates", "max_wait_in_half_open_s": 30, "automatic_transition": True,
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["failure_rate_threshold_pct"] == 50.5 and body["slow_call_rate_threshold_pct"] == 12.25
    config = get_breaker("payments", tenant_a).config
    assert config.failure_rate_bp == 5050 and config.slow_rate_bp == 1225 and config.half_open_mode == "rates"
    assert config.automatic_transition is True and config.max_wait_in_half_open_s == 30
    response = admin_client.post(f"{BASE}/policies/", {"name": "p2", "failure_rate_threshold_pct": 50.555},
                                 format="json")
    assert response.status_code == 400 and "failure_rate_threshold_pct" in response.json()["errors"]


def test_minimum_calls_beyond_a_count_window_is_accepted_and_capped(admin_client, tenant_a):
    response = admin_client.post(f"{BASE}/policies/", {"name": "p", "window_size": 5, "minimum_calls": 10},
                                 format="json")
    assert response.status_code == 201
    assert get_breaker("p", tenant_a).config.effective_minimum_calls == 5


def test_rates_below_the_minimum_calls_are_not_yet_computed(token_client, tenant_a, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="p", window_size=10, minimum_calls=4)
    client = token_client(tenant_a, "operator")
    for _ in range(3):
        client.post(f"{BASE}/breakers/p/report/", {"outcome": "failure", "duration_ms": 1}, format="json")
    fresh_registry.flush_all()
    live = client.get(f"{BASE}/breakers/p/").json()
    assert live["calls"] == 3 and live["rates_computed"] is False
    assert live["failure_rate_pct"] is None and live["slow_rate_pct"] is None
    client.post(f"{BASE}/breakers/p/report/", {"outcome": "success", "duration_ms": 1}, format="json")
    fresh_registry.flush_all()
    live = client.get(f"{BASE}/breakers/p/").json()
    assert live["rates_computed"] is True and live["failure_rate_pct"] == 75.0
