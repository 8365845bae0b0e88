"""Reads of alerting: firing alerts (for the console), alert and delivery lists with filters, history."""
from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from apps.alerting.models import Alert, AlertEvent, AlertRule, AlertState, Delivery, Silence
from apps.tenancy.models import Tenant

STATE_ORDER = Case(When(state=AlertState.FIRING, then=Value(0)), When(state=AlertState.PENDING, then=Value(1)),
                   default=Value(2), output_field=IntegerField())


def firing_alerts(*, tenant: Tenant) -> QuerySet[Alert]:
    """The tenant's firing alerts, critical first, then the most recent."""
    severity_order = Case(When(severity="critical", then=Value(0)), default=Value(1), output_field=IntegerField())
    return (Alert.objects.for_tenant(tenant).filter(state=AlertState.FIRING).select_related("rule")
            .order_by(severity_order, "-fired_at"))


def alert_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[Alert]:
    """Firing first, then pending, then the rest; filters: state, severity, rule, fingerprint."""
    alerts = Alert.objects.for_tenant(tenant).select_related("rule")
    for name, value in (filters or {}).items():
        if value not in (None, ""):
            alerts = alerts.filter(**{"rule_id" if name == "rule" else name: value})
    return alerts.order_by(STATE_ORDER, "-changed_at", "-pk")


def alert_history(*, alert: Alert) -> QuerySet[AlertEvent]:
    return AlertEvent.objects.for_tenant(alert.tenant_id).filter(alert=alert).order_by("-at", "-pk")


def delivery_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.for_tenant(tenant).select_related("channel")
    for name, value in (filters or {}).items():
        if value not in (None, ""):
            deliveries = deliveries.filter(**{f"{name}_id" if name in ("channel", "alert") else name: value})
    return deliveries.order_by("-sent_at", "-pk")


def rule_states(*, rules: list[AlertRule]) -> dict[int, dict[str, int]]:
    """{rule id: {state: count}} of pending and firing alerts, one query for a page of rules."""
    from django.db.models import Count

    counts: dict[int, dict[str, int]] = {rule.pk: {} for rule in rules}
    rows = (Alert.objects.filter(rule__in=rules, state__in=(AlertState.PENDING, AlertState.FIRING))
            .values("rule_id", "state").annotate(n=Count("pk")))
    for row in rows:
        counts[row["rule_id"]][row["state"]] = row["n"]
    return counts


def active_silences(*, tenant: Tenant, now) -> QuerySet[Silence]:
    return Silence.objects.for_tenant(tenant).filter(starts_at__lte=now, ends_at__gt=now)


def dashboard_feed(*, tenant: Tenant, limit: int = 50) -> QuerySet[Delivery]:
    """The in-app feed: notifications delivered to the tenant's dashboard channels, newest first."""
    return delivery_list(tenant=tenant, filters={"status": "sent"}).filter(channel__kind="dashboard")[:limit]
