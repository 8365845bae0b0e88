"""Senders: one class per channel kind, chosen by `BULWARK["ALERTING"]["SENDERS"]`, each turning one
notification payload (Alertmanager's webhook format) into the channel's message and sending it once.
A sender raises nothing: it answers a `SendResult`, and the delivery job logs it and retries on failure."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

from apps.alerting.channel_config import SMS_DEFAULT_BODY
from apps.alerting.conf import alerting_settings
from apps.alerting.matching import render
from apps.alerting.models import Channel

SIGNATURE_HEADER = "X-Bulwark-Signature"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    response_code: int | None = None
    error: str = ""
    latency_ms: float = 0.0


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def summary_line(payload: dict[str, Any]) -> str:
    """One line for SMS, Slack's fallback text and email subjects: status, count and the first summary."""
    alerts = payload.get("alerts", [])
    first = alerts[0] if alerts else {}
    name = payload.get("commonLabels", {}).get("alertname") or first.get("labels", {}).get("alertname", "alert")
    summary = first.get("annotations", {}).get("summary", "")
    count = f" ({len(alerts)} alerts)" if len(alerts) > 1 else ""
    return f"[{payload.get('status', 'firing').upper()}] {name}{count}{': ' + summary if summary else ''}"


class Sender:
    """Send one payload to one channel. Subclasses implement `send`; `deliver` times it and turns any
    exception into a failed result, so one channel's failure is data, never a crash of the others."""

    def send(self, channel: Channel, payload: dict[str, Any], timeout_s: float) -> SendResult:
        raise NotImplementedError

    def deliver(self, channel: Channel, payload: dict[str, Any]) -> SendResult:
        started = time.perf_counter()
        try:
            result = self.send(channel, payload, float(alerting_settings.DELIVERY_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - any failure of an outside service is a failed attempt
            result = SendResult(ok=False, error=f"{exc.__class__.__name__}: {exc}"[:2000])
        latency_ms = (time.perf_counter() - started) * 1000
        return SendResult(result.ok, result.response_code, result.error, latency_ms)


def _http_result(response: httpx.Response) -> SendResult:
    if response.is_success:
        return SendResult(ok=True, response_code=response.status_code)
    return SendResult(ok=False, response_code=response.status_code,
                      error=f"HTTP {response.status_code}: {response.text[:500]}")


class WebhookSender(Sender):
    """The payload as JSON, signed: `X-Bulwark-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""

    def send(self, channel, payload, timeout_s):
        body = json.dumps({**payload, "receiver": channel.name}, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(channel.secret, body)}
        return _http_result(httpx.post(channel.config["url"], content=body, headers=headers, timeout=timeout_s))


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Block Kit message: a header, one section per alert (at most 10), and a link when one is configured."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": summary_line(payload)[:150]}}]
    for alert in payload.get("alerts", [])[:10]:
        labels = alert.get("labels", {})
        annotations = alert.get("annotations", {})
        text = f"*{labels.get('alertname', '')}* — {labels.get('severity', '')} — {alert.get('status', '')}"
        for key in ("summary", "description"):
            if annotations.get(key):
                text += "\n" + annotations[key]
        scope = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                          if k not in ("alertname", "severity", "rule_id"))
        if scope:
            text += f"\n`{scope}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    if payload.get("externalURL"):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{payload['externalURL']}|Bulwark>"}]})
    return {"text": summary_line(payload), "blocks": blocks}


class SlackSender(Sender):
    def send(self, channel, payload, timeout_s):
        return _http_result(httpx.post(channel.secrets["webhook_url"], json=slack_message(payload), timeout=timeout_s))


class SmsSender(Sender):
    """A generic HTTP SMS provider: `body` fields rendered over {to}, {from} and {message}, sent as JSON or
    as a form, with the secret `auth` as the value of `auth_header` (Authorization by default)."""

    def send(self, channel, payload, timeout_s):
        config = channel.config
        values = {"to": config["to"], "from": config.get("from", ""), "message": summary_line(payload)[:320]}
        body = {key: render(template, values) for key, template in config.get("body", SMS_DEFAULT_BODY).items()}
        headers = {}
        if channel.secrets.get("auth"):
            headers[config.get("auth_header", "Authorization")] = channel.secrets["auth"]
        if config.get("content_type", "json") == "form":
            response = httpx.post(config["url"], data=body, headers=headers, timeout=timeout_s)
        else:
            response = httpx.post(config["url"], json=body, headers=headers, timeout=timeout_s)
        return _http_result(response)


def email_text(payload: dict[str, Any]) -> str:
    lines = [summary_line(payload), ""]
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        lines.append(f"- {labels.get('alertname', '')} [{labels.get('severity', '')}] {alert.get('status', '')} "
                     f"since {alert.get('startsAt', '')}")
        for key, text in sorted(alert.get("annotations", {}).items()):
            lines.append(f"    {key}: {text}")
        lines.append("    labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    if payload.get("externalURL"):
        lines += ["", payload["externalURL"]]
    return "\n".join(lines)


class EmailSender(Sender):
    """Through Django's email backend (the EMAIL_* settings: SMTP host, port, credentials, TLS)."""

    def send(self, channel, payload, timeout_s):
        prefix = channel.config.get("subject_prefix", "[Bulwark]")
        connection = get_connection(timeout=timeout_s)
        message = EmailMessage(subject=f"{prefix} {summary_line(payload)}"[:250], body=email_text(payload),
                               to=channel.config["to"], connection=connection)
        message.send(fail_silently=False)
        return SendResult(ok=True)


class DashboardSender(Sender):
    """The in-app feed: the delivery row is the feed entry; the console's live stream gets it at once."""

    def send(self, channel, payload, timeout_s):
        from apps.core import live

        live.publish(channel.tenant_id, "alert.notification",
                     {"channel": channel.name, "status": payload.get("status"), "summary": summary_line(payload),
                      "alerts": len(payload.get("alerts", []))})
        return SendResult(ok=True)


@lru_cache(maxsize=16)
def _sender_class(path: str) -> type[Sender]:
    return import_string(path)


def sender_for(kind: str) -> Sender:
    return _sender_class(alerting_settings.SENDERS[kind])()
