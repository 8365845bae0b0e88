"""The monitoring console: endpoints table (sortable, sparklines), an endpoint's percentiles over time,
system samples and thresholds. Thin: every figure comes from the selectors."""
from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.clock import SYSTEM_CLOCK
from apps.monitoring import selectors, services
from apps.monitoring.models import Endpoint, SystemSample, Thresholds
from apps.tenancy.admin_base import BoundedLookupsMixin, ReadOnlyAdminMixin, TenantScopedAdmin

SORTS = {"p95": "p95_ms", "error_rate": "error_rate", "rps": "rps", "count": "count", "route": "route"}


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of the values (no JavaScript, no external asset)."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}" for i, v in enumerate(values))
    return format_html('<svg width="{}" height="{}" viewBox="0 0 {} {}" role="img"><polyline fill="none" '
                       'stroke="currentColor" stroke-width="1.5" points="{}"/></svg>', width, height, width, height,
                       points)


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):  # figures are written by the pipeline
    list_display = ["route", "method", "created_at"]
    readonly_fields = ["route", "method", "created_at", "percentiles"]
    fields = ["route", "method", "created_at", "percentiles"]

    def changelist_view(self, request, extra_context=None):
        """The endpoints table of the active tenant over a window, sortable by p95, error rate or rps."""
        window = request.GET.get("window") if request.GET.get("window") in selectors.WINDOWS else "1h"
        sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "p95"
        key = SORTS[sort]
        now = SYSTEM_CLOCK.time()
        tenant = getattr(request, "tenant", None)
        rows = selectors.endpoint_summaries(tenant=tenant, window_s=selectors.WINDOWS[window], now=now,
                                            include_idle=True) if tenant is not None else []
        rows.sort(key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0), reverse=key != "route")
        start, end = selectors.window_bounds(window_s=min(selectors.WINDOWS[window], 3600), now=now)
        for row in rows:
            series = selectors.endpoint_series(tenant=tenant, route=row["route"], method=row["method"], metric="rps",
                                               start=start, end=end + 1e-6, step_s=60)
            row["sparkline"] = sparkline([v for _, v in series])
            row["url"] = reverse("admin:bulwark_monitoring_endpoint_change", args=[row["id"]]) if row["id"] else ""
        context = {**self.admin_site.each_context(request), "title": "Endpoints", "opts": self.model._meta,
                   "rows": rows, "window": window, "windows": list(selectors.WINDOWS), "sort": sort,
                   "sorts": list(SORTS), **(extra_context or {})}
        return TemplateResponse(request, "admin/bulwark_monitoring/endpoints.html", context)

    @admin.display(description="Latency percentiles, last hour (per minute)")
    def percentiles(self, obj: Endpoint) -> str:
        now = SYSTEM_CLOCK.time()
        start, end = selectors.window_bounds(window_s=3600, now=now)
        columns = {metric: dict(selectors.endpoint_series(
            tenant=obj.tenant_id, route=obj.route, method=obj.method, metric=metric, start=start, end=end + 1e-6,
            step_s=60)) for metric in ("rps", "p50_ms", "p95_ms", "p99_ms", "error_rate")}
        lines = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", [
            (at.strftime("%H:%M"), f"{rps:.2f}", *(f"{columns[m][at]:.1f}" if at in columns[m] else "-"
                                                    for m in ("p50_ms", "p95_ms", "p99_ms")),
             f"{columns['error_rate'][at]:.2%}" if at in columns["error_rate"] else "-")
            for at, rps in sorted(columns["rps"].items(), reverse=True) if rps
        ])
        p95 = [columns["p95_ms"].get(at, 0.0) for at in sorted(columns["rps"])]
        return format_html("<div>p95 {}</div><table><tr><th>minute</th><th>rps</th><th>p50 ms</th><th>p95 ms</th>"
                           "<th>p99 ms</th><th>errors</th></tr>{}</table>", sparkline(p95, 360, 48), lines)


@admin.register(SystemSample)
class SystemSampleAdmin(ReadOnlyAdminMixin, BoundedLookupsMixin, admin.ModelAdmin):
    """Platform data (hosts, and PostgreSQL statements of every tenant): superusers only, read-only."""

    list_display = ["taken_at", "host", "cpu_percent", "memory_percent", "disk_percent"]
    list_filter = ["host"]
    date_hierarchy = "taken_at"
    readonly_fields = ["host", "taken_at", "cpu_percent", "memory_percent", "disk_percent", "data"]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


@admin.register(Thresholds)
class ThresholdsAdmin(TenantScopedAdmin):
    list_display = ["tenant", "cpu_warning_pct", "cpu_critical_pct", "memory_warning_pct", "memory_critical_pct",
                    "response_time_warning_ms", "response_time_critical_ms", "error_rate_warning_pct",
                    "error_rate_critical_pct"]
    readonly_fields = ["states", "updated_at"]

    @admin.display(description="Current states")
    def states(self, obj: Thresholds) -> str:
        if obj.tenant_id is None:
            return "-"
        states = selectors.threshold_states(tenant=obj.tenant)
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            [(name, figure["state"], "-" if figure["value"] is None else f"{figure['value']:.1f}{figure['unit']}")
             for name, figure in states.items()]))

    def save_model(self, request, obj, form, change) -> None:
        if not request.user.is_superuser or obj.tenant_id is None:
            obj.tenant = request.tenant
        data = {f: getattr(obj, f) for f in form.changed_data if f != "tenant"}
        services.thresholds_update(tenant=obj.tenant, data=data or {"cpu_warning_pct": obj.cpu_warning_pct})
