"""The alerting API: validation (4xx with field errors, nothing applied), defaults, write-only secrets,
silences, alerts (history, acknowledge), the delivery log, and the audit of every configuration change."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerting.models import Alert, AlertEvent, AlertRule, Channel
from apps.audit.models import AuditEvent
from apps.core.audited import MASK
from tests.alerting.factories import AlertFactory, DeliveryFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/alerting"


@pytest.fixture
def admin(tenant_a, token_client):
    return token_client(tenant_a, "admin")


def good_rule(**overrides):
    return {"name": "High errors", "metric": "endpoint_error_rate", "matchers": {"route": "=~api/.*"},
            "warning": 0.02, "critical": 0.05, "for_s": 60, **overrides}


@pytest.mark.parametrize("overrides, field", [
    ({"metric": "nope"}, "metric"),
    ({"matchers": {"route": "=~(a"}}, "matchers"),
    ({"matchers": {"route": "=~(a)\\1"}}, "matchers"),
    ({"matchers": ["route"]}, "matchers"),
    ({"warning": 2, "critical": 5}, "warning"),
    ({"warning": 0.05, "critical": 0.02}, "critical"),
    ({"metric": "endpoint_rps", "warning": None, "critical": None}, "critical"),
    ({"for_s": -1}, "for_s"),
    ({"for_s": 1.5}, "for_s"),
    ({"window_s": 10}, "window_s"),
    ({"comparator": "!="}, "comparator"),
    ({"annotations": {"summary": "{value.__class__}"}}, "annotations"),
    ({"group_by": "route"}, "group_by"),
    ({"group_by": ["r" * 101]}, "group_by"),
    ({"group_by": [f"label_{n}" for n in range(11)]}, "group_by"),
    ({"group_by": ["route", "route"]}, "group_by"),
    ({"group_by": ["not a label"]}, "group_by"),
    ({"labels": {"alertname": "other"}}, "labels"),
    ({"labels": {"severity": "page"}}, "labels"),
    ({"labels": {"rule_id": "7"}}, "labels"),
    ({"labels": {"route": "api/v1/elsewhere"}}, "labels"),  # a scope label of endpoint_error_rate
    ({"labels": {"method": "GET"}}, "labels"),
    ({"labels": {"not a label": "x"}}, "labels"),
    ({"channels": [999999]}, "channels"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_rules_get_a_400_on_the_field_and_nothing_is_created(admin, overrides, field):
    response = admin.post(f"{BASE}/rules/", good_rule(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not AlertRule.objects.exists()


def test_colliding_labels_are_named_in_the_error(admin):
    response = admin.post(f"{BASE}/rules/", good_rule(labels={"severity": "page", "route": "x", "team": "web"}),
                          format="json")
    assert response.status_code == 400, response.content
    messages = " ".join(response.json()["errors"]["labels"])
    assert "'severity'" in messages and "'route'" in messages and "team" not in messages


def test_labels_and_group_by_within_the_limits_are_kept(admin):
    group_by = [f"label_{n}" for n in range(9)] + ["r" * 100]
    response = admin.post(f"{BASE}/rules/", good_rule(labels={"team": "web"}, group_by=group_by), format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["labels"], response.json()["group_by"]) == ({"team": "web"}, group_by)


def test_an_update_whose_labels_would_collide_is_a_400_and_changes_nothing(admin):
    created = admin.post(f"{BASE}/rules/", good_rule(metric="queue_depth", warning=5, critical=10,
                                                     matchers={}, labels={"route": "orders"}), format="json")
    assert created.status_code == 201, created.content
    url = f"{BASE}/rules/{created.json()['id']}/"
    for change in ({"labels": {"type": "jobs.ping"}}, {"labels": {"alertname": "x"}},
                   {"metric": "endpoint_error_rate", "warning": 0.02, "critical": 0.05}):
        response = admin.patch(url, change, format="json")
        assert response.status_code == 400, response.content
        assert "labels" in response.json()["errors"], response.json()
    rule = AlertRule.objects.get()
    assert (rule.metric, rule.labels) == ("queue_depth", {"route": "orders"})


def test_rule_create_offers_the_briefs_defaults_and_answers_its_state(admin):
    response = admin.post(f"{BASE}/rules/", {"name": "cpu", "metric": "cpu_percent"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["warning"], body["critical"], body["window_s"], body["group_wait_s"]) == (75, 90, 60, 10)
    assert (body["firing"], body["pending"]) == (0, 0)


def test_rule_names_are_unique_per_tenant(admin):
    assert admin.post(f"{BASE}/rules/", good_rule(), format="json").status_code == 201
    response = admin.post(f"{BASE}/rules/", good_rule(), format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]


def test_rule_changes_are_audited(admin, tenant_a):
    rule_id = admin.post(f"{BASE}/rules/", good_rule(), format="json").json()["id"]
    assert admin.patch(f"{BASE}/rules/{rule_id}/", {"critical": 0.1}, format="json").status_code == 200
    assert admin.delete(f"{BASE}/rules/{rule_id}/").status_code == 204
    events = list(AuditEvent.objects.filter(tenant=tenant_a, object_type__icontains="alertrule").order_by("pk")
                  .values_list("action", "changes"))
    assert [action for action, _ in events] == ["create", "update", "delete"]
    assert events[1][1]["critical"] == [0.05, 0.1]


def test_webhook_secret_is_returned_once_and_secrets_are_masked_everywhere(admin, tenant_a):
    created = admin.post(f"{BASE}/channels/", {"name": "hook", "kind": "webhook",
                                               "config": {"url": "https://example.com/h"}}, format="json")
    assert created.status_code == 201, created.content
    assert len(created.json()["secret"]) >= 32
    channel_id = created.json()["id"]
    assert "secret" not in admin.get(f"{BASE}/channels/{channel_id}/").json()
    slack = admin.post(f"{BASE}/channels/", {"name": "slack", "kind": "slack",
                                             "config": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}},
                       format="json").json()
    assert slack["config"] == {"webhook_url": MASK}
    assert admin.get(f"{BASE}/channels/{slack['id']}/").json()["config"] == {"webhook_url": MASK}
    for event in AuditEvent.objects.filter(tenant=tenant_a, object_type__icontains="channel"):
        assert "hooks.slack.com" not in str(event.changes)
        assert Channel.objects.get(name="hook").secret not in str(event.changes)
    # An update without the secret key keeps it; one with it replaces it (and is audited, masked).
    admin.patch(f"{BASE}/channels/{slack['id']}/", {"name": "slack2"}, format="json")
    assert Channel.objects.get(pk=slack["id"]).secrets["webhook_url"].endswith("/X")
    admin.patch(f"{BASE}/channels/{slack['id']}/", {"config": {"webhook_url": "https://hooks.slack.com/Y"}},
                format="json")
    assert Channel.objects.get(pk=slack["id"]).secrets["webhook_url"].endswith("/Y")
    update = AuditEvent.objects.filter(tenant=tenant_a, object_type__icontains="channel").order_by("pk").last()
    assert update.changes["secrets"] == [MASK, MASK]


@pytest.mark.parametrize("data, field", [
    ({"name": "x", "kind": "pager", "config": {}}, "kind"),
    ({"name": "x", "kind": "webhook", "config": {}}, "config"),
    ({"name": "x", "kind": "webhook", "config": {"url": "ftp://a"}}, "config"),
    ({"name": "x", "kind": "email", "config": {"to": ["not-an-address"]}}, "config"),
    ({"name": "x", "kind": "sms", "config": {"url": "https://sms.example", "to": "+1", "body": {"t": "{a.b}"}}},
     "config"),
    ({"name": "x", "kind": "dashboard", "config": []}, "config"),
])
def test_bad_channels_get_a_400_on_the_field(admin, data, field):
    response = admin.post(f"{BASE}/channels/", data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Channel.objects.exists()


def test_silences_create_expire_and_are_audited(tenant_a, token_client):
    operator = token_client(tenant_a, "operator")
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    response = operator.post(f"{BASE}/silences/", {"matchers": {"alertname": "High errors"}, "ends_at": ends,
                                                   "comment": "deploy"}, format="json")
    assert response.status_code == 201, response.content
    silence_id = response.json()["id"]
    expired = operator.post(f"{BASE}/silences/{silence_id}/expire/")
    assert expired.status_code == 200
    assert expired.json()["ends_at"] <= timezone.now().isoformat()
    assert operator.post(f"{BASE}/silences/{silence_id}/expire/").status_code == 409
    actions = list(AuditEvent.objects.filter(tenant=tenant_a, object_type__icontains="silence").order_by("pk")
                   .values_list("action", flat=True))
    assert actions == ["create", "update"]


@pytest.mark.parametrize("data, field", [
    ({"matchers": {}, "ends_at": "2030-01-01T00:00:00Z"}, "matchers"),
    ({"matchers": {"a": "=~("}, "ends_at": "2030-01-01T00:00:00Z"}, "matchers"),
    ({"matchers": {"a": "b"}, "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
])
def test_bad_silences_get_a_400(admin, data, field):
    response = admin.post(f"{BASE}/silences/", data, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


def test_alerts_list_firing_first_with_filters_history_and_acknowledge(tenant_a, token_client):
    firing = AlertFactory(tenant=tenant_a, state="firing")
    resolved = AlertFactory(tenant=tenant_a, state="resolved", rule=firing.rule)
    AlertEvent.objects.create(tenant=tenant_a, alert=firing, at=timezone.now(), from_state="pending",
                              to_state="firing", value=0.07)
    viewer = token_client(tenant_a, "viewer")
    ids = [a["id"] for a in viewer.get(f"{BASE}/alerts/").json()["results"]]
    assert ids == [firing.pk, resolved.pk]
    assert [a["id"] for a in viewer.get(f"{BASE}/alerts/", {"state": "resolved"}).json()["results"]] == [resolved.pk]
    assert viewer.get(f"{BASE}/alerts/", {"state": "bogus"}).status_code == 400
    history = viewer.get(f"{BASE}/alerts/{firing.pk}/history/").json()["results"]
    assert [(e["from_state"], e["to_state"], e["value"]) for e in history] == [("pending", "firing", 0.07)]
    assert viewer.post(f"{BASE}/alerts/{firing.pk}/acknowledge/").status_code == 403
    operator = token_client(tenant_a, "operator")
    acked = operator.post(f"{BASE}/alerts/{firing.pk}/acknowledge/")
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    assert operator.post(f"{BASE}/alerts/{resolved.pk}/acknowledge/").status_code == 409
    assert AuditEvent.objects.filter(tenant=tenant_a, action="alert.acknowledge").count() == 1
    assert Alert.objects.get(pk=firing.pk).acknowledged_by


def test_delivery_log_lists_with_filters(tenant_a, admin):
    sent = DeliveryFactory(tenant=tenant_a, status="sent", response_code=200)
    failed = DeliveryFactory(tenant=tenant_a, status="failed", error="HTTP 503")
    rows = admin.get(f"{BASE}/deliveries/", {"status": "failed"}).json()["results"]
    assert [r["id"] for r in rows] == [failed.pk]
    assert {"channel", "alert", "status", "attempt", "response_code", "error", "sent_at"} <= set(rows[0])
    assert [r["id"] for r in admin.get(f"{BASE}/deliveries/", {"channel": sent.channel_id}).json()["results"]] == [
        sent.pk]


def test_channel_test_action_needs_an_operator_and_logs_a_delivery(tenant_a, token_client, admin):
    channel_id = admin.post(f"{BASE}/channels/", {"name": "dash", "kind": "dashboard"}, format="json").json()["id"]
    assert token_client(tenant_a, "viewer").post(f"{BASE}/channels/{channel_id}/test/").status_code == 403
    response = token_client(tenant_a, "operator").post(f"{BASE}/channels/{channel_id}/test/")
    assert response.status_code == 200 and response.json()["status"] == "sent"


def test_every_metric_kind_the_issue_names_is_registered():
    from apps.core import metric_kinds

    names = {kind.name for kind in metric_kinds.all_kinds()}
    assert {"endpoint_error_rate", "endpoint_p95_ms", "endpoint_p99_ms", "endpoint_rps", "cpu_percent",
            "memory_percent", "disk_percent", "queue_depth", "queue_age_s", "breaker_open", "ratelimit_denials",
            "cache_hit_ratio"} <= names
