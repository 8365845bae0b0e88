"""The alerting admin: rules with their state (firing first), alerts acknowledged, silences expired, channel
secrets masked, the delivery log read-only."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.alerting import services
from apps.alerting.models import Alert, Silence
from apps.core.audited import MASK
from tests.alerting.factories import AlertFactory, AlertRuleFactory, DeliveryFactory, SilenceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, make_member, tenant_a):
    def sign_in(role="admin"):
        client.force_login(make_member(tenant_a, role))
        return client

    return sign_in


def test_rules_with_firing_alerts_come_first(signed_in, tenant_a):
    quiet = AlertRuleFactory(tenant=tenant_a, name="a quiet rule")
    loud = AlertRuleFactory(tenant=tenant_a, name="z loud rule")
    AlertFactory(tenant=tenant_a, rule=loud, state="firing")
    page = signed_in().get(reverse("admin:bulwark_alerting_alertrule_changelist")).content.decode()
    assert page.index(loud.name) < page.index(quiet.name)


def test_operator_acknowledges_from_the_alert_list(signed_in, tenant_a):
    alert = AlertFactory(tenant=tenant_a, state="firing")
    response = signed_in("operator").post(reverse("admin:bulwark_alerting_alert_changelist"),
                                          {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is not None


def test_viewer_cannot_acknowledge(signed_in, tenant_a):
    alert = AlertFactory(tenant=tenant_a, state="firing")
    signed_in("viewer").post(reverse("admin:bulwark_alerting_alert_changelist"),
                             {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None


def test_silence_expires_from_the_admin(signed_in, tenant_a):
    silence = SilenceFactory(tenant=tenant_a)
    signed_in("operator").post(reverse("admin:bulwark_alerting_silence_changelist"),
                               {"action": "expire", "_selected_action": [silence.pk]})
    assert Silence.objects.get(pk=silence.pk).ends_at <= timezone.now()


def test_channel_secrets_are_masked_in_the_admin(signed_in, tenant_a):
    channel = services.channel_create(tenant=tenant_a, data={
        "name": "slack", "kind": "slack", "config": {"webhook_url": "https://hooks.slack.com/services/SECRET"}})
    client = signed_in()
    for url in (reverse("admin:bulwark_alerting_channel_changelist"),
                reverse("admin:bulwark_alerting_channel_change", args=[channel.pk])):
        page = client.get(url).content.decode()
        assert "SECRET" not in page and MASK in page


def test_delivery_log_is_read_only(signed_in, tenant_a):
    delivery = DeliveryFactory(tenant=tenant_a, status="failed", error="HTTP 503")
    client = signed_in()
    assert "HTTP 503" in client.get(reverse("admin:bulwark_alerting_delivery_changelist")).content.decode()
    assert client.get(reverse("admin:bulwark_alerting_delivery_add")).status_code == 403
    assert client.get(reverse("admin:bulwark_alerting_delivery_change", args=[delivery.pk])).status_code == 200
