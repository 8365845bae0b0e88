"""The operator console of optimization: findings with apply / rollback / accept / dismiss, load tests."""
from __future__ import annotations

from django.contrib import admin, messages

from apps.core.errors import ApplicationError
from apps.optimization import services
from apps.optimization.models import Finding, LoadTest, Status
from apps.tenancy.admin_base import ComputedRowsAdmin
from apps.tenancy.roles import Role


class ReadOnlyAdmin(ComputedRowsAdmin):
    """Computed rows: the analysis and the jobs write them; operators act on them through actions."""

    write_role = Role.OPERATOR


def _each(modeladmin, request, queryset, service, done: str) -> None:
    count = 0
    for finding in queryset:
        try:
            service(finding)
            count += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{finding}: {exc.message}", messages.WARNING)
    if count:
        modeladmin.message_user(request, f"{count} finding(s) {done}.", messages.SUCCESS)


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdmin):
    list_display = ["kind", "method", "route", "subject", "severity", "status", "estimated_impact", "last_seen_at"]
    list_filter = ["kind", "status", "severity"]
    search_fields = ["route", "subject"]
    fields = ["kind", "method", "route", "subject", "severity", "status", "recommendation", "estimated_impact",
              "evidence", "fix", "applied", "applied_at", "before", "after", "measured_at", "first_seen_at",
              "last_seen_at", "occurrences"]
    readonly_fields = fields
    actions = ["apply_fix", "rollback_fix", "accept", "dismiss"]

    def _operator(self, request) -> bool:
        return self._role_allows(request, Role.OPERATOR)

    @admin.action(description="Apply the proposed Bulwark policy", permissions=["operate"])
    def apply_fix(self, request, queryset):
        _each(self, request, queryset, lambda f: services.finding_apply(finding=f), "applied")

    @admin.action(description="Roll back the applied fix", permissions=["operate"])
    def rollback_fix(self, request, queryset):
        _each(self, request, queryset, lambda f: services.finding_rollback(finding=f), "rolled back")

    @admin.action(description="Accept", permissions=["operate"])
    def accept(self, request, queryset):
        _each(self, request, queryset, lambda f: services.finding_triage(finding=f, status=Status.ACCEPTED), "accepted")

    @admin.action(description="Dismiss", permissions=["operate"])
    def dismiss(self, request, queryset):
        _each(self, request, queryset, lambda f: services.finding_triage(finding=f, status=Status.DISMISSED),
              "dismissed")

    def has_operate_permission(self, request) -> bool:
        return self._operator(request)


@admin.register(LoadTest)
class LoadTestAdmin(ReadOnlyAdmin):
    list_display = ["target", "created_at", "finding", "knee"]
    fields = ["target", "params", "steps", "knee", "finding", "job_run_id", "created_at"]
    readonly_fields = fields
