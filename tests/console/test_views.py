"""The console page and its actions over HTTP: roles, CSRF-checked POSTs, another tenant's breaker is a 404."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.resilience.models import BreakerPolicy
from tests.resilience.factories import BreakerPolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, make_member):
    def sign_in(tenant, role):
        client.force_login(make_member(tenant, role))
        return client
    return sign_in


def test_viewer_page_has_cards_and_no_action_controls(signed_in, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    page = signed_in(tenant_a, "viewer").get(reverse("admin:index")).content.decode()
    assert 'data-breaker="payments" data-state="closed"' in page
    assert 'data-card="breakers"' in page and 'data-chart-container="latency"' in page
    assert "data-action" not in page and "/admin/console/" not in page


def test_operator_page_has_the_actions(signed_in, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    page = signed_in(tenant_a, "operator").get(reverse("admin:index")).content.decode()
    assert reverse("console:breaker-action", args=["payments", "force_open"]) in page


def test_breaker_board_pages_beyond_fifty(signed_in, tenant_a):
    for n in range(51):
        BreakerPolicyFactory(tenant=tenant_a, name=f"dep-{n:02d}")
    client = signed_in(tenant_a, "viewer")
    first = client.get(reverse("admin:index")).content.decode()
    second = client.get(reverse("admin:index") + "?breakers=2").content.decode()
    assert first.count("data-breaker=") == 50 and 'data-breaker="dep-50"' not in first
    assert second.count("data-breaker=") == 1 and 'data-breaker="dep-50"' in second


def test_operator_forces_open_audited(signed_in, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    response = signed_in(tenant_a, "operator").post(reverse("console:breaker-action", args=["payments", "force_open"]))
    assert response.status_code == 302
    assert BreakerPolicy.objects.for_tenant(tenant_a).get(name="payments").forced_state == "forced_open"
    assert AuditEvent.objects.for_tenant(tenant_a).filter(action="breaker.force_open").count() == 1


def test_viewer_cannot_run_an_action(signed_in, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    response = signed_in(tenant_a, "viewer").post(reverse("console:breaker-action", args=["payments", "force_open"]))
    assert response.status_code == 403
    assert BreakerPolicy.objects.for_tenant(tenant_a).get(name="payments").forced_state == "none"


def test_another_tenants_breaker_is_a_404_and_untouched(signed_in, tenant_a, tenant_b):
    BreakerPolicyFactory(tenant=tenant_b, name="theirs")
    response = signed_in(tenant_a, "operator").post(reverse("console:breaker-action", args=["theirs", "force_open"]))
    assert response.status_code == 404
    assert BreakerPolicy.objects.for_tenant(tenant_b).get(name="theirs").forced_state == "none"


def test_unknown_action_is_a_404(signed_in, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    response = signed_in(tenant_a, "admin").post(reverse("console:breaker-action", args=["payments", "explode"]))
    assert response.status_code == 404


def test_actions_refuse_get_and_anonymous(client, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="payments")
    url = reverse("console:breaker-action", args=["payments", "force_open"])
    assert client.post(url).status_code == 302  # to the login page
    assert BreakerPolicy.objects.for_tenant(tenant_a).get(name="payments").forced_state == "none"


def test_alert_actions_are_404_without_alerting(signed_in, tenant_a):
    response = signed_in(tenant_a, "operator").post(reverse("console:alert-action", args=[1, "acknowledge"]))
    assert response.status_code == 404
