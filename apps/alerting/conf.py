"""Settings of alerting: `settings.BULWARK["ALERTING"]`, validated once."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, positive_number

CHANNEL_KINDS = ("webhook", "slack", "email", "sms", "dashboard")


def _evaluate_every(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 5 <= value <= 60:
        raise ValueError(f"must be a whole number of seconds from 5 to 60, got {value!r}")


def _attempts(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 20:
        raise ValueError(f"must be a whole number from 1 to 20, got {value!r}")


def _senders(value: Any) -> None:
    if not isinstance(value, dict) or set(value) != set(CHANNEL_KINDS):
        raise ValueError(f"must map each channel kind ({', '.join(CHANNEL_KINDS)}) to a dotted sender class path")


def _string(value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")


alerting_settings = AppSettings(
    "ALERTING",
    defaults={
        # How often every tenant's rules are evaluated (the `alerting.evaluate` job loops within its minute).
        "EVALUATE_EVERY_S": 15,
        # A delivery attempt gives up after this long; a slow channel holds one job worker, never the others.
        "DELIVERY_TIMEOUT_S": 5,
        # Attempts per notification and channel (the jobs app retries with jittered exponential backoff).
        "DELIVERY_MAX_ATTEMPTS": 5,
        # The class that sends each channel kind: a subclass of apps.alerting.senders.Sender.
        "SENDERS": {
            "webhook": "apps.alerting.senders.WebhookSender",
            "slack": "apps.alerting.senders.SlackSender",
            "email": "apps.alerting.senders.EmailSender",
            "sms": "apps.alerting.senders.SmsSender",
            "dashboard": "apps.alerting.senders.DashboardSender",
        },
        # Shown as `externalURL` in webhook bodies and as the link in Slack and email messages.
        "EXTERNAL_URL": "",
    },
    validators={
        "EVALUATE_EVERY_S": _evaluate_every,
        "DELIVERY_TIMEOUT_S": positive_number,
        "DELIVERY_MAX_ATTEMPTS": _attempts,
        "SENDERS": _senders,
        "EXTERNAL_URL": _string,
    },
)
