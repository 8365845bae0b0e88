"""Every write of alerting: rules, channels (secrets kept apart), silences, acknowledgements, and the
delivery of notifications (one logged attempt at a time, retried as a job)."""
from __future__ import annotations

import secrets as secrets_module
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.alerting import channel_config
from apps.alerting.models import (
    DEFAULT_THRESHOLDS,
    Alert,
    AlertRule,
    AlertState,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Notification,
    Silence,
)
from apps.alerting.senders import SendResult, sender_for
from apps.audit.services import record
from apps.core.context import Actor, current_actor
from apps.core.errors import ConflictError
from apps.core.services import integrity_as_field_error, model_create, model_delete, model_update
from apps.tenancy.models import Tenant

DELIVER_JOB = "alerting.deliver"
RULE_NAME_TAKEN = "A rule with this name already exists."
CHANNEL_NAME_TAKEN = "A channel with this name already exists."


class DeliveryFailed(Exception):
    """An attempt failed; the delivery job raises it so the jobs app retries with backoff."""


# --- rules ----------------------------------------------------------------------------------------------

def rule_defaults(*, metric: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The product brief's warning and critical levels when a rule on CPU, memory, response time or error
    rate names neither."""
    data = dict(data)
    if data.get("warning") is None and data.get("critical") is None and metric in DEFAULT_THRESHOLDS:
        data["warning"], data["critical"] = DEFAULT_THRESHOLDS[metric]
    return data


def _set_channels(rule: AlertRule, channels) -> None:
    if channels is None:
        return
    before = sorted(rule.channels.values_list("pk", flat=True))
    rule.channels.set(channels)
    after = sorted(c.pk for c in channels)
    if before != after:
        record(action="update", obj=rule, changes={"channels": [before, after]})


@transaction.atomic
def rule_create(*, tenant: Tenant, data: Mapping[str, Any]) -> AlertRule:
    data = dict(data)
    channels = data.pop("channels", None)
    data = rule_defaults(metric=data.get("metric", ""), data=data)
    with integrity_as_field_error(field="name", message=RULE_NAME_TAKEN):
        rule = model_create(model=AlertRule, data=data, tenant=tenant)
    _set_channels(rule, channels)
    return rule


@transaction.atomic
def rule_update(*, rule: AlertRule, data: Mapping[str, Any]) -> AlertRule:
    data = dict(data)
    channels = data.pop("channels", None)
    with integrity_as_field_error(field="name", message=RULE_NAME_TAKEN):
        rule = model_update(instance=rule, data=data)
    _set_channels(rule, channels)
    return rule


@transaction.atomic
def rule_delete(*, rule: AlertRule) -> None:
    model_delete(instance=rule)


# --- channels -------------------------------------------------------------------------------------------

@transaction.atomic
def channel_create(*, tenant: Tenant, data: Mapping[str, Any]) -> Channel:
    """A webhook channel gets a generated HMAC secret: read it from the returned object's `secret`, once."""
    data = dict(data)
    config, secrets = channel_config.split_secrets(data.get("kind", ""), data.pop("config", None) or {})
    if data.get("kind") == ChannelKind.WEBHOOK:
        data["secret"] = secrets_module.token_urlsafe(32)
    with integrity_as_field_error(field="name", message=CHANNEL_NAME_TAKEN):
        return model_create(model=Channel, data={**data, "config": config, "secrets": secrets}, tenant=tenant)


@transaction.atomic
def channel_update(*, channel: Channel, data: Mapping[str, Any]) -> Channel:
    """Secret keys left out of `config` keep their stored value; the kind of a channel does not change."""
    data = dict(data)
    if "kind" in data and data["kind"] != channel.kind:
        from django.core.exceptions import ValidationError

        raise ValidationError({"kind": "The kind of a channel cannot change; create a new channel."})
    if "config" in data:
        config, secrets = channel_config.split_secrets(channel.kind, data.pop("config") or {})
        data.update(config=config, secrets={**channel.secrets, **secrets})
    with integrity_as_field_error(field="name", message=CHANNEL_NAME_TAKEN):
        return model_update(instance=channel, data=data)


@transaction.atomic
def channel_delete(*, channel: Channel) -> None:
    model_delete(instance=channel)


TEST_PAYLOAD_NOTE = "This is a test notification from Bulwark; no alert is firing."


def test_payload(channel: Channel, now: datetime) -> dict[str, Any]:
    labels = {"alertname": "BulwarkTestNotification", "severity": "warning", "channel": channel.name}
    return {
        "version": "4", "groupKey": "{}:{test=\"true\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": channel.name, "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels,
        "commonAnnotations": {"summary": TEST_PAYLOAD_NOTE}, "externalURL": "",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": TEST_PAYLOAD_NOTE},
                    "startsAt": now.isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": "test"}],
    }


def channel_test(*, channel: Channel, now: datetime | None = None) -> Delivery:
    """Send a test notification now (one attempt, not retried) and log it like any delivery."""
    now = now or timezone.now()
    result = sender_for(channel.kind).deliver(channel, test_payload(channel, now))
    return _log(channel=channel, notification=None, attempt=1, result=result)


# --- delivery -------------------------------------------------------------------------------------------

def _log(*, channel: Channel, notification: Notification | None, attempt: int, result: SendResult) -> Delivery:
    return Delivery.objects.create(
        tenant_id=channel.tenant_id, channel=channel, notification=notification,
        alert_id=notification.alert_id if notification is not None else None,
        status=DeliveryStatus.SENT if result.ok else DeliveryStatus.FAILED, attempt=attempt,
        response_code=result.response_code, latency_ms=round(result.latency_ms, 3), error=result.error[:5000])


def deliveries_submit(*, tenant_id: int, pairs: list[tuple[int, int]]) -> None:
    """One `alerting.deliver` job per (notification, channel): a slow or failing channel holds its own job
    worker and retries on its own schedule, never the others'."""
    from apps.jobs.conf import jobs_settings
    from apps.jobs.services import Submission, job_submit_many

    tenant = Tenant.objects.get(pk=tenant_id)
    submissions = [Submission(job_type=DELIVER_JOB, params={"notification": n, "channel": c}, tenant=tenant)
                   for n, c in pairs]
    step = int(jobs_settings.SUBMIT_MANY_MAX)
    for start in range(0, len(submissions), step):
        job_submit_many(submissions=submissions[start:start + step], submitted_by=Actor.system(display="alerting"))


def delivery_attempt(*, tenant: Tenant, notification_id: int, channel_id: int, attempt: int) -> Delivery:
    """Send one notification to one channel once and log the attempt; raises DeliveryFailed when it failed."""
    channel = Channel.objects.for_tenant(tenant).filter(pk=channel_id).first()
    notification = Notification.objects.for_tenant(tenant).filter(pk=notification_id).first()
    if channel is None or notification is None:
        raise LookupError(f"channel {channel_id} or notification {notification_id} no longer exists")
    payload = {**notification.payload, "receiver": channel.name}
    result = sender_for(channel.kind).deliver(channel, payload)
    delivery = _log(channel=channel, notification=notification, attempt=attempt, result=result)
    if not result.ok:
        raise DeliveryFailed(f"{channel.kind} channel {channel.name!r}: {result.error}")
    return delivery


# --- silences and acknowledgements ----------------------------------------------------------------------

@transaction.atomic
def silence_create(*, tenant: Tenant, data: Mapping[str, Any], actor: Actor | None = None) -> Silence:
    actor = actor or current_actor()
    return model_create(model=Silence, data={**data, "created_by": actor.display[:150]}, tenant=tenant)


@transaction.atomic
def silence_update(*, silence: Silence, data: Mapping[str, Any]) -> Silence:
    return model_update(instance=silence, data=data)


@transaction.atomic
def silence_expire(*, silence: Silence, now: datetime | None = None) -> Silence:
    """End a silence now (kept, for the record); an expired silence cannot be expired again."""
    now = now or timezone.now()
    if silence.ends_at <= now:
        raise ConflictError("This silence has already expired.", code="already_expired")
    silence.ends_at = max(now, silence.starts_at)
    if silence.ends_at == silence.starts_at:  # a silence that had not started yet: it never will
        silence.starts_at = silence.ends_at = now
        silence.save()
        return silence
    silence.full_clean()
    silence.save()
    return silence


@transaction.atomic
def acknowledge_alert(*, alert: Alert, actor: Actor | None = None, now: datetime | None = None) -> Alert:
    """An operator takes a firing alert: its repeat notifications stop until the alert changes state.
    Audited as `alert.acknowledge`."""
    if alert.state != AlertState.FIRING:
        raise ConflictError(f"Only a firing alert can be acknowledged; this one is {alert.state}.",
                            code="not_firing")
    if alert.acknowledged_at is not None:
        return alert
    actor = actor or current_actor()
    alert.acknowledged_at = now or timezone.now()
    alert.acknowledged_by = actor.display[:150]
    alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    record(action="alert.acknowledge", obj=alert, actor=actor,
           changes={"acknowledged_by": [None, alert.acknowledged_by]})
    return alert


def create_silence(*, tenant: Tenant, matchers: dict[str, str], ends_at: datetime, comment: str = "",
                   starts_at: datetime | None = None, actor: Actor | None = None) -> Silence:
    """For the console: a silence of the alerts matching `matchers` until `ends_at`."""
    data: dict[str, Any] = {"matchers": matchers, "ends_at": ends_at, "comment": comment}
    if starts_at is not None:
        data["starts_at"] = starts_at
    return silence_create(tenant=tenant, data=data, actor=actor)

