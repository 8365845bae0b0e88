"""The operator console of breakers: policies with live state, operator actions, transitions and scorecards."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils.html import format_html, format_html_join

from apps.resilience import selectors, services
from apps.resilience.models import BreakerEvent, BreakerPolicy, DependencyMinute, ForcedState, RetryPolicy
from apps.tenancy.admin_base import ReadOnlyAdminMixin, TenantScopedAdmin
from apps.tenancy.roles import Role


class ServiceSaveMixin:
    """Saves and deletes go through the app's services, so the admin is one more door to the same logic."""

    def save_model(self, request, obj, form, change) -> None:
        data = {k: v for k, v in form.cleaned_data.items() if k != "tenant"}
        if change:
            fresh = type(obj).objects.get(pk=obj.pk)
            services.policy_update(policy=fresh, data={k: data[k] for k in form.changed_data if k in data})
            return
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant
        obj.tenant = tenant
        obj.pk = services.policy_create(model=type(obj), tenant=tenant, data=data).pk

    def delete_model(self, request, obj) -> None:
        services.policy_delete(policy=obj)


class OperatorActionsMixin:
    def has_operate_permission(self, request) -> bool:
        return self._role_allows(request, Role.OPERATOR)


@admin.register(BreakerPolicy)
class BreakerPolicyAdmin(ServiceSaveMixin, OperatorActionsMixin, TenantScopedAdmin):
    list_display = ["name", "tenant", "live_state", "live_failure_rate", "window", "forced_state", "last_transition",
                    "degraded"]
    list_filter = ["forced_state", "window_kind", "half_open_mode"]
    search_fields = ["name", "description"]
    readonly_fields = ["forced_state", "created_at", "updated_at", "recent_transitions"]
    actions = ["force_open", "force_close", "disable", "metrics_only", "reset"]
    list_select_related = ["tenant"]
    fieldsets = [
        (None, {"fields": ["name", "description", "forced_state"]}),
        ("Window", {"fields": ["window_kind", "window_size", "minimum_calls", "failure_rate_threshold_pct",
                               "slow_call_duration_ms", "slow_call_rate_threshold_pct", "consecutive_failures"]}),
        ("Open and half-open", {
            "fields": ["open_duration_s", "open_duration_multiplier", "max_open_duration_s", "automatic_transition",
                       "half_open_probes", "half_open_mode", "max_wait_in_half_open_s"],
            "description": "first_failure (Bulwark's mode): one failed probe opens again, all probes succeeding "
                           "close. rates (resilience4j's): the probes are a fresh window judged by the failure and "
                           "slow-call rates once every probe has reported. Either way an ignored outcome gives "
                           "its ticket back, and a ticket not reported within the probe timeout is given back.",
        }),
        ("What counts", {"fields": ["failure_exceptions", "ignored_exceptions", "failure_statuses",
                                    "ignored_statuses"]}),
        ("Timeout and bulkhead", {"fields": ["timeout_s", "max_concurrent", "bulkhead_scope"]}),
        ("History", {"fields": ["recent_transitions", "created_at", "updated_at"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if request.user.is_superuser:
            fieldsets[0] = (None, {"fields": ["tenant", "name", "description", "forced_state"]})
        return fieldsets

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**selectors.last_transition_annotations())

    @admin.display(description="Recent transitions")
    def recent_transitions(self, policy: BreakerPolicy) -> str:
        if policy.pk is None:
            return "–"
        events = BreakerEvent.objects.for_tenant(policy.tenant_id).filter(name=policy.name)[:10]
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
            ((f"{e.at:%Y-%m-%d %H:%M:%S}", e.from_state, e.to_state, e.reason) for e in events),
        )
        return format_html("<table>{}</table>", rows) if events else "none yet"

    def _live(self, policy: BreakerPolicy) -> dict:
        cache = getattr(policy, "_live_cache", None)
        if cache is None:
            cache = policy._live_cache = selectors.breaker_live(policy=policy)
        return cache

    @admin.display(description="State")
    def live_state(self, policy: BreakerPolicy) -> str:
        return self._live(policy)["state"]

    @admin.display(description="Failure rate")
    def live_failure_rate(self, policy: BreakerPolicy) -> str:
        live = self._live(policy)
        rate = live["failure_rate_pct"]
        if not live["rates_computed"]:
            return f"not yet computed ({live['calls']} calls)" if live["calls"] else "–"
        return f"{rate}% of {live['calls']}"

    @admin.display(description="Degraded")
    def degraded(self, policy: BreakerPolicy) -> str:
        return self._live(policy)["degraded"] or "–"

    @admin.display(description="Window")
    def window(self, policy: BreakerPolicy) -> str:
        if policy.consecutive_failures:
            return f"{policy.consecutive_failures} failures in a row, open {policy.open_duration_s:g} s"
        unit = "calls" if policy.window_kind == "count" else "s"
        return f"{policy.failure_rate_threshold_pct}% of last {policy.window_size} {unit}"

    @admin.display(description="Last transition", ordering="last_transition_at")
    def last_transition(self, policy: BreakerPolicy) -> str:
        if not policy.last_transition_at:
            return "–"
        return f"→ {policy.last_transition_to} at {policy.last_transition_at:%Y-%m-%d %H:%M:%S}"


    def _force(self, request, queryset: QuerySet, forced_state: str, verb: str) -> None:
        for policy in queryset:
            services.breaker_force(policy=policy, forced_state=forced_state)
        messages.success(request, f"{verb} {queryset.count()} breaker(s).")

    @admin.action(description="Force open (reject every call)", permissions=["operate"])
    def force_open(self, request, queryset) -> None:
        self._force(request, queryset, ForcedState.FORCED_OPEN, "Forced open")

    @admin.action(description="Force closed (permit every call)", permissions=["operate"])
    def force_close(self, request, queryset) -> None:
        self._force(request, queryset, ForcedState.FORCED_CLOSED, "Forced closed")

    @admin.action(description="Disable (pass through, count nothing)", permissions=["operate"])
    def disable(self, request, queryset) -> None:
        self._force(request, queryset, ForcedState.DISABLED, "Disabled")

    @admin.action(description="Metrics only (fresh figures, count, never transition or reject)",
                  permissions=["operate"])
    def metrics_only(self, request, queryset) -> None:
        self._force(request, queryset, ForcedState.METRICS_ONLY, "Set to metrics only")

    @admin.action(description="Reset (automatic, closed, empty window)", permissions=["operate"])
    def reset(self, request, queryset) -> None:
        for policy in queryset:
            services.breaker_reset(policy=policy)
        messages.success(request, f"Reset {queryset.count()} breaker(s).")


@admin.register(RetryPolicy)
class RetryPolicyAdmin(ServiceSaveMixin, TenantScopedAdmin):
    list_display = ["name", "tenant", "max_attempts", "backoff_base_ms", "backoff_cap_ms", "budget_pct"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]



class ReadOnlyAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """History and figures: viewed, never edited."""


@admin.register(BreakerEvent)
class BreakerEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "name", "tenant", "from_state", "to_state", "reason", "calls", "failure_rate_pct",
                    "slow_rate_pct", "consecutive_failures"]
    list_filter = ["to_state", "name"]
    search_fields = ["name", "reason"]
    date_hierarchy = "at"
    list_select_related = ["tenant"]


@admin.register(DependencyMinute)
class DependencyMinuteAdmin(ReadOnlyAdmin):
    list_display = ["minute", "name", "tenant", "calls", "failures", "slow_calls", "rejected", "success_rate",
                    "avg_ms", "p50_ms", "p95_ms", "cost_per_call"]
    list_filter = ["name"]
    search_fields = ["name"]
    date_hierarchy = "minute"
    list_select_related = ["tenant"]
    verbose_name = "dependency scorecard"

    @staticmethod
    def _figures(row: DependencyMinute) -> dict:
        figures = getattr(row, "_figures", None)
        if figures is None:
            figures = row._figures = selectors.scorecard_figures([row])
        return figures

    @admin.display(description="Success %")
    def success_rate(self, row: DependencyMinute):
        return self._figures(row)["success_rate_pct"]

    @admin.display(description="Avg ms")
    def avg_ms(self, row: DependencyMinute):
        return self._figures(row)["avg_ms"]

    @admin.display(description="p50 ms")
    def p50_ms(self, row: DependencyMinute):
        return self._figures(row)["p50_ms"]

    @admin.display(description="p95 ms")
    def p95_ms(self, row: DependencyMinute):
        return self._figures(row)["p95_ms"]

    @admin.display(description="Cost per call")
    def cost_per_call(self, row: DependencyMinute):
        return self._figures(row)["cost_per_call"]
