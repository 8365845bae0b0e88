"""What the console reads from apps that may not be installed: alerts.

The alerting app is optional for the console. Its alerts card reads only `firing_alerts(tenant)`, and its
acknowledge/silence buttons call only `alert_acknowledge` / `alert_silence`, so whether alerting is there is
decided in this module alone.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.apps import apps as django_apps
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import NotFoundError

FIRING_ALERTS_SHOWN = 20


def alerting_installed() -> bool:
    return django_apps.is_installed("apps.alerting")


def firing_alerts(tenant) -> list[dict[str, Any]]:
    """The tenant's firing alerts, critical first, then newest, as dicts with `id`, `name`, `severity`
    (warning|critical), `since` (ISO time), `summary`, `acknowledged` and `url` (its admin page).
    [] without the alerting app."""
    if not alerting_installed():
        return []
    from apps.alerting import selectors
    from apps.alerting.evaluation import DEFAULT_SUMMARY
    from apps.alerting.matching import render

    rows = []
    for alert in selectors.firing_alerts(tenant=tenant)[:FIRING_ALERTS_SHOWN]:
        rule = alert.rule
        threshold = rule.critical if alert.severity == "critical" else rule.warning
        values = {**alert.labels, "value": alert.value if alert.value is not None else float("nan"),
                  "threshold": threshold if threshold is not None else float("nan"),
                  "metric": rule.metric, "comparator": rule.comparator}
        rows.append({
            "id": alert.pk,
            "name": rule.name,
            "severity": alert.severity,
            "since": alert.fired_at.isoformat() if alert.fired_at else "",
            "summary": render((rule.annotations or {}).get("summary") or DEFAULT_SUMMARY, values),
            "acknowledged": alert.acknowledged_at is not None,
            "url": reverse("admin:bulwark_alerting_alert_change", args=[alert.pk]),
        })
    return rows


def alerts_url() -> str:
    """The alerts changelist the card links to ("" without the alerting app)."""
    if not alerting_installed():
        return ""
    return reverse("admin:bulwark_alerting_alert_changelist")


def _alert(tenant, alert_id: int):
    from apps.alerting.models import Alert

    alert = Alert.objects.for_tenant(tenant).select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        raise NotFoundError(f"No alert with id {alert_id}.")
    return alert


def alert_acknowledge(*, tenant, alert_id: int, actor) -> None:
    """Acknowledge a firing alert (operator): its repeats stop until it changes state. Audited by alerting."""
    from apps.alerting.services import acknowledge_alert

    acknowledge_alert(alert=_alert(tenant, alert_id), actor=actor)


def alert_silence(*, tenant, alert_id: int, minutes: int, actor) -> None:
    """Silence the alerts of this alert's rule and labels for `minutes` (operator). Audited by alerting."""
    from apps.alerting.services import create_silence

    alert = _alert(tenant, alert_id)
    matchers = {"alertname": alert.rule.name, "rule_id": str(alert.rule_id)}
    matchers.update({name: str(value) for name, value in alert.labels.items()
                     if name not in ("severity",) and not str(value).startswith(("=~", "!=", "!~"))})
    create_silence(tenant=tenant, matchers=matchers, ends_at=timezone.now() + timedelta(minutes=minutes),
                   comment=f"Silenced from the console for {minutes} min (alert {alert_id}).", actor=actor)
