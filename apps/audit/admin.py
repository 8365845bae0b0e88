"""The audit trail in the admin: read-only, filterable, each event's diff as an old → new table."""
from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_verify, tenant_slugs
from apps.tenancy.admin_base import ReadOnlyAdminMixin, TenantScopedAdmin


def _cell(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["timestamp", "action", "object_type", "object_repr", "actor_kind", "actor_display", "client_ip"]
    list_filter = ["actor_kind", "actor_display", "action", "object_type", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["object_repr", "actor_display"]
    date_hierarchy = "timestamp"
    list_select_related = ["tenant"]
    fields = [
        "timestamp", "tenant", "action", "object_type", "object_id", "object_repr", "changes_table",
        "actor_kind", "actor_id", "actor_display", "request_id", "client_ip", "user_agent", "prev_hash", "hash",
    ]
    readonly_fields = fields
    actions = ["verify_chains"]

    def get_fields(self, request, obj=None):
        return self.fields if request.user.is_superuser else [f for f in self.fields if f != "tenant"]

    @admin.action(description="Verify the hash chain of the selected events' tenants", permissions=["view"])
    def verify_chains(self, request, queryset) -> None:
        slugs = tenant_slugs()
        for tenant_id in sorted({e.tenant_id for e in queryset.only("tenant_id")}, key=lambda i: i or 0):
            report = chain_verify(tenant_id=tenant_id)
            name = f"Tenant {slugs.get(tenant_id, tenant_id)}" if tenant_id is not None else "Platform"
            if report.ok:
                messages.success(request, f"{name}: chain intact, {report.checked} event(s) checked.")
            else:
                where = f"event {report.broken_event_id}" if report.broken_event_id else "its anchor"
                messages.error(request, f"{name}: chain BROKEN at {where}: {report.reason}.")

    @admin.display(description="Changes")
    def changes_table(self, event: AuditEvent) -> str:
        changes = event.changes or {}
        if not changes:
            return "—"
        pairs = all(isinstance(v, list) and len(v) == 2 for v in changes.values())
        if pairs:
            rows = format_html_join(
                "", "<tr><th>{}</th><td>{}</td><td>→</td><td>{}</td></tr>",
                ((name, _cell(old), _cell(new)) for name, (old, new) in changes.items()),
            )
            header = mark_safe("<tr><th>field</th><th>old</th><th></th><th>new</th></tr>")
        else:  # a named operation: its parameters
            rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, _cell(v)) for k, v in changes.items()))
            header = mark_safe("<tr><th>parameter</th><th>value</th></tr>")
        return format_html('<table class="audit-changes"><thead>{}</thead><tbody>{}</tbody></table>', header, rows)
