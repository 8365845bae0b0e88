"""Delivery to real local receivers: signed webhooks, Slack Block Kit, an SMS provider, email over SMTP
(aiosmtpd) and the dashboard feed; every attempt logged; failures retried as jobs with backoff."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from apps.alerting import selectors, services
from apps.alerting.evaluation import evaluate_tenant
from apps.alerting.models import Delivery
from apps.jobs.models import JobRun
from tests.alerting.conftest import TEST_METRIC

pytestmark = pytest.mark.django_db


def firing_rule(tenant, channels, name="High errors"):
    rule = services.rule_create(tenant=tenant, data={
        "name": name, "metric": TEST_METRIC, "warning": 0.02, "critical": None, "for_s": 0, "group_wait_s": 0,
        "annotations": {"summary": "{route} fails {value:.0%}", "description": "Above {threshold}"},
        "channels": channels})
    return rule


def fire(tenant, readings, clock, value=0.5):
    readings.set(tenant, [({"route": "api/v1/x"}, value)])
    evaluate_tenant(tenant_id=tenant.pk, now=clock.now())
    return list(JobRun.objects.filter(tenant=tenant, type="alerting.deliver").order_by("pk"))


def test_webhook_carries_alertmanager_format_signed_with_the_secret(tenant_a, readings, clock, http_receiver,
                                                                     run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "hook", "kind": "webhook",
                                                             "config": {"url": http_receiver.url + "/hook"}})
    rule = firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    assert run_attempt(run).status == "succeeded"
    (call,) = http_receiver.on("/hook")
    expected = hmac.new(channel.secret.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["x-bulwark-signature"] == f"sha256={expected}"
    body = call.json()
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "hook"
    (alert,) = body["alerts"]
    assert alert["labels"] == {"route": "api/v1/x", "alertname": "High errors", "rule_id": str(rule.pk),
                               "severity": "warning"}
    assert alert["annotations"] == {"summary": "api/v1/x fails 50%", "description": "Above 0.02"}
    (delivery,) = Delivery.objects.filter(channel=channel)
    assert (delivery.status, delivery.attempt, delivery.response_code) == ("sent", 1, 200)
    assert delivery.alert.rule == rule and delivery.latency_ms > 0


def test_failed_attempts_are_logged_and_retried_until_the_receiver_recovers(tenant_a, readings, clock,
                                                                           http_receiver, run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "hook", "kind": "webhook",
                                                             "config": {"url": http_receiver.url + "/hook"}})
    firing_rule(tenant_a, [channel])
    http_receiver.fail_next = 2
    (run,) = fire(tenant_a, readings, clock)
    assert run_attempt(run).status == "retrying"
    assert run.next_attempt_at is not None  # backoff: the jobs app schedules the next attempt
    assert run_attempt(run).status == "retrying"
    assert run_attempt(run).status == "succeeded"
    log = list(Delivery.objects.filter(channel=channel).order_by("attempt").values_list("attempt", "status",
                                                                                      "response_code"))
    assert log == [(1, "failed", 503), (2, "failed", 503), (3, "sent", 200)]
    assert "503" in Delivery.objects.get(attempt=1).error
    assert len(http_receiver.on("/hook")) == 3


def test_a_failing_channel_never_blocks_the_others(tenant_a, readings, clock, http_receiver, run_attempt):
    broken = services.channel_create(tenant=tenant_a, data={"name": "down", "kind": "webhook",
                                                            "config": {"url": "http://127.0.0.1:9/nothing"}})
    good = services.channel_create(tenant=tenant_a, data={"name": "up", "kind": "slack",
                                                          "config": {"webhook_url": http_receiver.url + "/slack"}})
    firing_rule(tenant_a, [broken, good])
    runs = fire(tenant_a, readings, clock)
    assert len(runs) == 2  # one job per channel
    outcomes = {run.params["channel"]: run_attempt(run).status for run in runs}
    assert outcomes == {broken.pk: "retrying", good.pk: "succeeded"}
    assert Delivery.objects.get(channel=broken).status == "failed"
    assert len(http_receiver.on("/slack")) == 1


def test_slack_gets_a_block_kit_message(tenant_a, readings, clock, http_receiver, run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "slack", "kind": "slack",
                                                             "config": {"webhook_url": http_receiver.url + "/slack"}})
    firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    run_attempt(run)
    message = http_receiver.on("/slack")[0].json()
    assert message["text"].startswith("[FIRING] High errors")
    assert message["blocks"][0]["type"] == "header"
    assert "api/v1/x fails 50%" in message["blocks"][1]["text"]["text"]


def test_sms_provider_gets_its_body_template_and_auth(tenant_a, readings, clock, http_receiver, run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "sms", "kind": "sms", "config": {
        "url": http_receiver.url + "/sms", "to": "+15550001", "from": "+15559999", "content_type": "form",
        "body": {"To": "{to}", "From": "{from}", "Body": "{message}"}, "auth": "Basic c2lkOnRva2Vu"}})
    firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    assert run_attempt(run).status == "succeeded"
    (call,) = http_receiver.on("/sms")
    assert call.headers["authorization"] == "Basic c2lkOnRva2Vu"
    from urllib.parse import parse_qs

    form = parse_qs(call.body.decode())
    assert form["To"] == ["+15550001"] and form["From"] == ["+15559999"]
    assert form["Body"][0].startswith("[FIRING] High errors: api/v1/x fails 50%")


def test_email_goes_through_smtp(tenant_a, readings, clock, smtp_receiver, run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "mail", "kind": "email",
                                                             "config": {"to": ["oncall@example.com"]}})
    firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    assert run_attempt(run).status == "succeeded"
    ((recipients, message),) = smtp_receiver.messages
    assert recipients == ["oncall@example.com"]
    assert message["Subject"].startswith("[Bulwark] [FIRING] High errors")
    assert "api/v1/x fails 50%" in message.get_payload()


def test_email_to_a_refusing_server_is_a_failed_attempt(tenant_a, readings, clock, settings, run_attempt):
    from benchmarks.ratelimit_harness import port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port(43)  # nothing listens there
    channel = services.channel_create(tenant=tenant_a, data={"name": "mail", "kind": "email",
                                                             "config": {"to": ["oncall@example.com"]}})
    firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    assert run_attempt(run).status == "retrying"
    assert "Connection" in Delivery.objects.get(channel=channel).error


def test_dashboard_channel_feeds_the_in_app_feed(tenant_a, readings, clock, run_attempt):
    channel = services.channel_create(tenant=tenant_a, data={"name": "dash", "kind": "dashboard", "config": {}})
    firing_rule(tenant_a, [channel])
    (run,) = fire(tenant_a, readings, clock)
    run_attempt(run)
    (entry,) = selectors.dashboard_feed(tenant=tenant_a)
    assert entry.channel == channel and entry.notification.payload["alerts"][0]["labels"]["route"] == "api/v1/x"


def test_send_test_notification_logs_one_attempt(tenant_a, http_receiver):
    channel = services.channel_create(tenant=tenant_a, data={"name": "hook", "kind": "webhook",
                                                             "config": {"url": http_receiver.url + "/t"}})
    delivery = services.channel_test(channel=channel)
    assert delivery.status == "sent" and delivery.notification is None
    assert http_receiver.on("/t")[0].json()["alerts"][0]["labels"]["alertname"] == "BulwarkTestNotification"


def test_a_slow_channel_times_out_as_a_failed_attempt(tenant_a, http_receiver, settings):
    settings.BULWARK = {**settings.BULWARK, "ALERTING": {"DELIVERY_TIMEOUT_S": 0.2}}
    http_receiver.delay_s = 1.0
    channel = services.channel_create(tenant=tenant_a, data={"name": "slow", "kind": "webhook",
                                                             "config": {"url": http_receiver.url + "/slow"}})
    delivery = services.channel_test(channel=channel)
    assert delivery.status == "failed" and "Timeout" in delivery.error
