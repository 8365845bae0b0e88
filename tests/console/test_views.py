"""The console page and its actions over HTTP: roles, CSRF-checked POSTs, another tenant's breaker is a 404."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.alerting.models import Silence
from apps.audit.models import AuditEvent
from apps.resilience.models import BreakerPolicy
from tests.alerting.factories import AlertFactory
from tests.console.conftest import requests, sample
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


def test_firing_alert_shows_on_the_card_with_its_summary(signed_in, tenant_a, tenant_b):
    AlertFactory(tenant=tenant_a, rule__name="Orders failing", value=0.04, labels={"route": "api/v1/orders"})
    AlertFactory(tenant=tenant_b, rule__name="Their alert")
    page = signed_in(tenant_a, "viewer").get(reverse("admin:index")).content.decode()
    assert "Orders failing" in page and "Their alert" not in page
    assert "0.04" in page  # the default summary renders the value that fired it
    assert reverse("admin:bulwark_alerting_alert_changelist") in page


def test_operator_acknowledges_a_firing_alert_audited(signed_in, tenant_a):
    alert = AlertFactory(tenant=tenant_a)
    response = signed_in(tenant_a, "operator").post(reverse("console:alert-action", args=[alert.pk, "acknowledge"]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert AuditEvent.objects.for_tenant(tenant_a).filter(action="alert.acknowledge").count() == 1


def test_acknowledging_a_resolved_alert_is_a_message_not_an_error(signed_in, tenant_a):
    alert = AlertFactory(tenant=tenant_a, state="resolved")
    response = signed_in(tenant_a, "operator").post(reverse("console:alert-action", args=[alert.pk, "acknowledge"]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_operator_silences_the_alerts_rule_and_labels(signed_in, tenant_a):
    alert = AlertFactory(tenant=tenant_a, rule__name="Orders failing",
                         labels={"alertname": "Orders failing", "severity": "warning", "route": "api/v1/orders"})
    response = signed_in(tenant_a, "operator").post(reverse("console:alert-action", args=[alert.pk, "silence"]))
    assert response.status_code == 302
    silence = Silence.objects.for_tenant(tenant_a).get()
    assert silence.matchers == {"alertname": "Orders failing", "rule_id": str(alert.rule_id), "route": "api/v1/orders"}


def test_viewer_and_another_tenant_cannot_act_on_an_alert(signed_in, tenant_a, tenant_b):
    theirs = AlertFactory(tenant=tenant_b)
    ours = AlertFactory(tenant=tenant_a)
    assert signed_in(tenant_a, "operator").post(
        reverse("console:alert-action", args=[theirs.pk, "acknowledge"])).status_code == 404
    assert signed_in(tenant_a, "viewer").post(
        reverse("console:alert-action", args=[ours.pk, "acknowledge"])).status_code == 403
    theirs.refresh_from_db()
    ours.refresh_from_db()
    assert theirs.acknowledged_at is None and ours.acknowledged_at is None


def _card_states(page: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'data-card="([a-z_]+)" data-state="([a-z]+)"', page))


def test_cards_are_rendered_in_their_threshold_state_with_their_figures(signed_in, sink, tenant_a):
    sample(cpu=80, memory=90)
    requests(sink, tenant_a, count=100, errors=3, duration_ms=1200)
    page = signed_in(tenant_a, "viewer").get(reverse("admin:index")).content.decode()
    states = _card_states(page)
    assert {name: states[name] for name in ("cpu", "memory", "response_time", "error_rate", "latency", "traffic",
                                            "system", "endpoints", "breakers", "jobs")} == {
        "cpu": "warning", "memory": "critical", "response_time": "critical", "error_rate": "warning",
        "latency": "critical", "traffic": "warning", "system": "critical", "endpoints": "critical",
        "breakers": "ok", "jobs": "ok"}
    assert '<span data-figure="value">80.0</span> %' in page and '<span data-figure="value">3.0</span> %' in page
    assert "warning 75 · critical 90" in page  # the cpu card's levels (the defaults)


def test_an_open_breaker_and_a_failed_job_colour_their_cards(signed_in, tenant_a):
    from apps.resilience.services import breaker_force
    from tests.jobs.factories import JobRunFactory

    breaker_force(policy=BreakerPolicyFactory(tenant=tenant_a, name="payments"), forced_state="forced_open")
    BreakerPolicyFactory(tenant=tenant_a, name="search")
    JobRunFactory(tenant=tenant_a, status="failed")
    page = signed_in(tenant_a, "viewer").get(reverse("admin:index")).content.decode()
    states = _card_states(page)
    assert (states["breakers"], states["jobs"]) == ("critical", "warning")
    assert 'data-breaker="payments" data-state="forced_open"' in page
