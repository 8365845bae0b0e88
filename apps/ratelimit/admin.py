"""Operator console for rate limiting: policies with their per-minute stats, and resetting a key's counter."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apps.core.errors import ApplicationError
from apps.ratelimit import selectors, services, stats
from apps.ratelimit.models import RateLimitPolicy
from apps.tenancy.admin_base import TenantScopedAdmin
from apps.tenancy.roles import Role


class ResetKeyForm(forms.Form):
    key = forms.CharField(
        max_length=500, help_text="As the policy keys requests: ip:203.0.113.7, user:42, token:7, header:abc, tenant:3."
    )


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(TenantScopedAdmin):
    list_display = ["name", "match_kind", "match_value", "key_kind", "algorithm", "rate", "period", "burst",
                    "mode", "failure_mode", "priority", "enabled"]
    list_filter = ["enabled", "mode", "algorithm", "match_kind", "key_kind"]
    search_fields = ["name", "description", "match_value"]
    actions = ["reset_key"]
    fieldsets = [
        (None, {"fields": ["name", "description", "enabled", "priority"]}),
        ("Match", {"fields": ["match_kind", "match_value", "methods", "roles"]}),
        ("Key", {"fields": ["key_kind", "key_header"]}),
        ("Limit", {"fields": ["algorithm", "rate", "period", "burst", "mode", "failure_mode"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if request.user.is_superuser:
            fieldsets[0] = (None, {"fields": ["tenant", *fieldsets[0][1]["fields"]]})
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        tenant = getattr(request, "tenant", None)
        if request.user.is_superuser or tenant is None:
            return form

        class TenantBoundForm(form):
            # The tenant is not a form field, but the (tenant, name) rule must be checked by the form,
            # with a field message, not by the database with an IntegrityError.
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if self.instance.tenant_id is None:
                    self.instance.tenant = tenant

        return TenantBoundForm

    def has_reset_key_permission(self, request) -> bool:
        return self._role_allows(request, Role.OPERATOR)

    @admin.action(description="Reset a key's counter", permissions=["reset_key"])
    def reset_key(self, request, queryset):
        if "apply" in request.POST:
            form = ResetKeyForm(request.POST)
            if form.is_valid():
                key = form.cleaned_data["key"]
                for policy in queryset:
                    try:
                        existed = services.counter_reset(policy=policy, key=key, actor=request.actor)
                    except ApplicationError as exc:
                        self.message_user(request, exc.message, messages.ERROR)
                        return None
                    state = "reset" if existed else "had no counter for it (nothing to reset)"
                    self.message_user(request, f"{policy.name}: key {key!r} {state}.", messages.SUCCESS)
                return None
        else:
            form = ResetKeyForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Reset a key's counter",
            "form": form,
            "policies": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/bulwark_ratelimit/reset_key.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        policy = self.get_object(request, object_id)
        if policy is not None:
            stats.flush()
            extra_context["ratelimit_stats"] = selectors.policy_stats(policy=policy, minutes=60)
        return super().change_view(request, object_id, form_url, extra_context)
