"""The console page's first render: the same sections the stream sends, read once for the request."""
from __future__ import annotations

from django import template
from django.core.paginator import Paginator
from django.urls import reverse

from apps.console import selectors, services, sources
from apps.console.conf import console_settings
from apps.console.hub import merge
from apps.tenancy.roles import Role, role_at_least

register = template.Library()

CHANGELISTS = {
    "breakers": "admin:bulwark_resilience_breakerpolicy_changelist",
    "jobs": "admin:bulwark_jobs_jobrun_changelist",
    "audit": "admin:bulwark_audit_auditevent_changelist",
    "endpoints": "admin:bulwark_monitoring_endpoint_changelist",
    "health": "admin:bulwark_monitoring_thresholds_changelist",
    "system": "admin:bulwark_monitoring_systemsample_changelist",
    "anomalies": "admin:bulwark_analytics_anomaly_changelist",
}
HEALTH_CARDS = [("cpu", "CPU"), ("memory", "Memory"), ("response_time", "Response time (p95)"),
                ("error_rate", "Error rate")]


def _changelist(name: str) -> str:
    try:
        return reverse(CHANGELISTS[name])
    except Exception:  # noqa: BLE001 - a model hidden from this site: the card links nowhere
        return ""


@register.simple_tag(takes_context=True)
def console_page(context) -> dict:
    request = context["request"]
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {"tenant": None}
    state = merge(selectors.fast_sections(tenant=tenant), selectors.metric_sections(tenant=tenant))
    breakers = list(state["breakers"].values())
    page = Paginator(breakers, console_settings.BREAKERS_PER_PAGE).get_page(request.GET.get("breakers"))
    jobs = sorted(state["jobs"].values(), key=lambda job: -job["id"])
    cards = state["cards"]
    health = [{"name": name, "label": label, **state["health"][name]} for name, label in HEALTH_CARDS]
    return {
        "tenant": tenant,
        "can_operate": request.user.is_superuser or role_at_least(getattr(request, "role", None), Role.OPERATOR),
        "state": state,
        "cards": cards,
        "health": health,
        "breaker_page": page,
        "breaker_actions": [(key, label) for key, (label, _state) in services.BREAKER_ACTIONS.items()],
        "jobs": jobs[: console_settings.RECENT_JOBS],
        "links": {**{name: _changelist(name) for name in CHANGELISTS}, "alerts": sources.alerts_url()},
        "alerting": sources.alerting_installed(),
    }
