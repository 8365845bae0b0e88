"""What the console reads from apps that may not be installed: alerts.

The alerting app is optional for the console. Its alerts card reads only `firing_alerts(tenant)`, and its
acknowledge/silence buttons call only `alert_acknowledge` / `alert_silence`, so wiring alerting in is a
change to this module alone.
"""
from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps


def alerting_installed() -> bool:
    return django_apps.is_installed("apps.alerting")


def firing_alerts(tenant) -> list[dict[str, Any]]:
    """The tenant's firing alerts, newest first, as dicts with `id`, `name`, `severity` (warning|critical),
    `since` (ISO time), `summary`, `acknowledged` and `url` (its admin page). [] without the alerting app."""
    if not alerting_installed():
        return []
    return []  # wired at merge time to apps.alerting's selector of firing alerts


def alerts_url() -> str:
    """The alerts changelist the card links to ("" without the alerting app)."""
    return ""  # wired at merge time: reverse("admin:bulwark_alerting_alert_changelist")


def alert_acknowledge(*, tenant, alert_id: int, actor) -> None:
    """Acknowledge a firing alert (operator). Wired at merge time to apps.alerting's service."""
    raise NotImplementedError("the alerting app is not installed")


def alert_silence(*, tenant, alert_id: int, minutes: int, actor) -> None:
    """Silence an alert's rule for `minutes` (operator). Wired at merge time to apps.alerting's service."""
    raise NotImplementedError("the alerting app is not installed")
