"""The console's action endpoints (forms on the admin index, POST only, CSRF-checked, operator role)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.console import services, sources
from apps.core.errors import ApplicationError, NotFoundError
from apps.tenancy.roles import Role, role_at_least


def _require_operator(request: HttpRequest) -> None:
    if getattr(request, "tenant", None) is None:
        raise Http404("No active tenant.")
    if not (request.user.is_superuser or role_at_least(getattr(request, "role", None), Role.OPERATOR)):
        raise PermissionDenied("Operators and admins only.")


@require_POST
def breaker_action(request: HttpRequest, name: str, action: str) -> HttpResponseRedirect:
    _require_operator(request)
    try:
        services.breaker_action(tenant=request.tenant, name=name, action=action)
    except NotFoundError as exc:
        raise Http404(str(exc)) from None
    label = services.BREAKER_ACTIONS[action][0]
    messages.success(request, f"{label}: breaker {name}.")
    return HttpResponseRedirect(reverse("admin:index") + "#card-breakers")


@require_POST
def alert_action(request: HttpRequest, alert_id: int, action: str) -> HttpResponseRedirect:
    _require_operator(request)
    if not sources.alerting_installed() or action not in ("acknowledge", "silence"):
        raise Http404("No such alert action.")
    try:
        if action == "acknowledge":
            sources.alert_acknowledge(tenant=request.tenant, alert_id=alert_id, actor=request.actor)
        else:
            sources.alert_silence(tenant=request.tenant, alert_id=alert_id, minutes=60, actor=request.actor)
    except NotFoundError as exc:
        raise Http404(str(exc)) from None
    except ApplicationError as exc:  # e.g. the alert resolved meanwhile: not firing any more
        messages.error(request, f"Alert {alert_id}: {exc}")
        return HttpResponseRedirect(reverse("admin:index") + "#card-alerts")
    messages.success(request, f"Alert {alert_id}: {action}d.")
    return HttpResponseRedirect(reverse("admin:index") + "#card-alerts")


def admin_view(view):
    """Signed in and allowed in the admin (a member of the active tenant), as every admin page."""
    return admin.site.admin_view(view)
