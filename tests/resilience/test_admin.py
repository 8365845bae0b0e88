"""The operator console: live state in the list, audited operator actions by role, saves through services."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.resilience.models import BreakerPolicy
from apps.resilience.runtime import get_breaker
from tests.resilience.factories import BreakerEventFactory, BreakerPolicyFactory, DependencyMinuteFactory

CHANGELIST = "admin:bulwark_resilience_breakerpolicy_changelist"


@pytest.fixture
def signed_in(client, make_member, tenant_a):
    def sign_in(role):
        client.force_login(make_member(tenant_a, role))
        return client

    return sign_in


def test_list_shows_live_state_failure_rate_and_last_transition(signed_in, tenant_a, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="payments", window_size=10, minimum_calls=2)
    breaker = get_breaker("payments", tenant_a)
    for outcome in ("failure", "failure"):
        breaker.record(breaker.acquire(), outcome, duration_s=0.01)
    fresh_registry.flush_all()
    page = signed_in("viewer").get(reverse(CHANGELIST)).content.decode()
    assert "payments" in page and "100.0% of 2" in page and ">open<" in page
    assert "→ open at" in page


@pytest.mark.parametrize(("action", "audit_action", "forced_state"), [
    ("force_open", "breaker.force_open", "forced_open"),
    ("force_close", "breaker.force_close", "forced_closed"),
    ("disable", "breaker.disable", "disabled"),
    ("metrics_only", "breaker.metrics_only", "metrics_only"),
    ("reset", "breaker.reset", "none"),
])
def test_operators_run_the_actions_and_each_is_audited(signed_in, tenant_a, action, audit_action, forced_state):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="payments", forced_state="forced_open")
    if action == "force_open":
        policy.forced_state = "none"
        policy.save()
    response = signed_in("operator").post(reverse(CHANGELIST), {"action": action, "_selected_action": [policy.pk]})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.forced_state == forced_state
    assert AuditEvent.objects.filter(action=audit_action, object_id=str(policy.pk)).count() == 1


def test_viewers_cannot_run_operator_actions(signed_in, tenant_a):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="payments")
    client = signed_in("viewer")
    assert "force_open" not in client.get(reverse(CHANGELIST)).content.decode()
    client.post(reverse(CHANGELIST), {"action": "force_open", "_selected_action": [policy.pk]})
    policy.refresh_from_db()
    assert policy.forced_state == "none"
    assert not AuditEvent.objects.filter(action="breaker.force_open").exists()


def test_adding_a_policy_in_the_admin_goes_through_the_service(signed_in, tenant_a):
    data = {
        "name": "search", "description": "", "window_kind": "count", "window_size": 50, "minimum_calls": 10,
        "failure_rate_threshold_pct": 50, "slow_call_duration_ms": 2000, "slow_call_rate_threshold_pct": "",
        "consecutive_failures": "", "open_duration_s": 30, "open_duration_multiplier": 1, "max_open_duration_s": 600,
        "half_open_probes": 1, "failure_exceptions": "[]", "ignored_exceptions": "[]", "failure_statuses": "[500]",
        "ignored_statuses": "[]", "timeout_s": "", "max_concurrent": "", "bulkhead_scope": "process",
        "half_open_mode": "rates", "max_wait_in_half_open_s": "",
    }
    response = signed_in("admin").post(reverse("admin:bulwark_resilience_breakerpolicy_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    policy = BreakerPolicy.objects.get(name="search")
    assert policy.tenant == tenant_a and policy.window_size == 50 and policy.half_open_mode == "rates"
    assert AuditEvent.objects.filter(action="create", object_type="bulwark_resilience.breakerpolicy",
                                     object_id=str(policy.pk)).count() == 1


def test_invalid_admin_input_shows_the_field_error(signed_in, tenant_a):
    response = signed_in("admin").post(reverse("admin:bulwark_resilience_breakerpolicy_add"), {
        "name": "x", "window_kind": "count", "window_size": 10, "minimum_calls": 1,
        "failure_rate_threshold_pct": 0, "slow_call_duration_ms": 1, "open_duration_s": 1,
        "open_duration_multiplier": 1, "max_open_duration_s": 1, "half_open_probes": 1,
        "failure_exceptions": "[]", "ignored_exceptions": "[]", "failure_statuses": "[]", "ignored_statuses": "[]",
        "bulkhead_scope": "process",
    })
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0.01" in response.content.decode()
    assert not BreakerPolicy.objects.exists()


def test_history_and_scorecard_pages_render(signed_in, tenant_a):
    BreakerEventFactory(tenant=tenant_a, name="payments")
    DependencyMinuteFactory(tenant=tenant_a, name="payments", histogram={"100": 10})
    client = signed_in("viewer")
    assert "payments" in client.get(reverse("admin:bulwark_resilience_breakerevent_changelist")).content.decode()
    page = client.get(reverse("admin:bulwark_resilience_dependencyminute_changelist")).content.decode()
    assert "payments" in page


def test_the_scorecard_page_shows_the_figures_of_the_api(signed_in, tenant_a, token_client):
    from django.utils import timezone

    DependencyMinuteFactory(tenant=tenant_a, name="payments", minute=timezone.now().replace(second=0, microsecond=0),
                            calls=3, failures=1, duration_ms_sum=1000.0, cost_sum=0.01, cost_calls=3,
                            histogram={"100": 3})
    api = token_client(tenant_a, "viewer").get("/api/v1/resilience/dependencies/payments/scorecard").json()["total"]
    page = signed_in("viewer").get(reverse("admin:bulwark_resilience_dependencyminute_changelist")).content.decode()
    for figure in ("success_rate_pct", "avg_ms", "p50_ms", "p95_ms", "cost_per_call"):
        assert f">{api[figure]}<" in page, figure


def test_the_change_page_shows_the_recent_transitions(signed_in, tenant_a, tenant_b):
    policy = BreakerPolicyFactory(tenant=tenant_a, name="payments")
    BreakerEventFactory(tenant=tenant_a, name="payments", reason="5 consecutive failures (threshold 5)")
    BreakerEventFactory(tenant=tenant_b, name="payments", reason="another tenant's reason")
    page = signed_in("viewer").get(
        reverse("admin:bulwark_resilience_breakerpolicy_change", args=[policy.pk])).content.decode()
    assert "5 consecutive failures (threshold 5)" in page
    assert "another tenant" not in page
