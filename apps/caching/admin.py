"""The operator console of caching: policies with their statistics, invalidation and warming actions."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.validators import RegexValidator
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from apps.caching import selectors, services
from apps.caching.models import CachePolicy
from apps.core.errors import ApplicationError
from apps.tenancy.admin_base import TenantScopedAdmin
from apps.tenancy.roles import Role


class InvalidateTagsForm(forms.Form):
    tags = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="One tag per line.")

    def clean_tags(self) -> list[str]:
        tags = [line.strip() for line in self.cleaned_data["tags"].splitlines() if line.strip()]
        check = RegexValidator(r"^[A-Za-z0-9_.:/-]{1,100}$", "Tags are up to 100 of A-Z a-z 0-9 _ . : / -.")
        for tag in tags:
            check(tag)
        if not tags or len(tags) > 100:
            raise forms.ValidationError("Give between 1 and 100 tags.")
        return tags


@admin.register(CachePolicy)
class CachePolicyAdmin(TenantScopedAdmin):
    list_display = ["name", "route_name", "path_pattern", "ttl_s", "vary_on", "stale_while_revalidate_s",
                    "adaptive_ttl", "enabled"]
    list_filter = ["enabled", "vary_on", "adaptive_ttl"]
    search_fields = ["name", "route_name", "path_pattern"]
    readonly_fields = ["statistics", "created_at", "updated_at"]
    actions = ["warm_policies", "invalidate_policies", "invalidate_tags", "invalidate_tenant"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "route_name", "path_pattern", "methods"]}),
        ("Freshness", {"fields": ["ttl_s", "stale_while_revalidate_s", "stale_if_error_s", "adaptive_ttl",
                                  "ttl_min_s", "ttl_max_s", "early_refresh_beta"]}),
        ("Key", {"fields": ["vary_on", "vary_headers", "ignored_query_params"]}),
        ("Storage and invalidation", {"fields": ["cacheable_statuses", "max_body_bytes", "tags",
                                                 "invalidate_on_models", "warm_urls"]}),
        ("Last hour", {"fields": ["statistics", "created_at", "updated_at"]}),
    ]

    def has_operate_permission(self, request) -> bool:
        return self._role_allows(request, Role.OPERATOR)

    def save_model(self, request, obj, form, change) -> None:
        if not request.user.is_superuser or obj.tenant_id is None:
            obj.tenant = request.tenant
        services.policy_save(policy=obj)

    def delete_model(self, request, obj) -> None:
        services.policy_delete(policy=obj)

    def delete_queryset(self, request, queryset) -> None:
        for policy in queryset:
            services.policy_delete(policy=policy)

    @admin.display(description="Statistics")
    def statistics(self, obj: CachePolicy) -> str:
        if obj.pk is None:
            return "-"
        report = selectors.policy_stats(policy=obj, minutes=60)
        totals, memory = report["totals"], report["store_memory"]
        ratio = "-" if totals["hit_ratio"] is None else f"{totals['hit_ratio']:.1%}"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", [
            ("Hits", totals["hits"]), ("Misses", totals["misses"]), ("Stale served", totals["stale"]),
            ("Revalidations", totals["revalidations"]), ("Origin calls saved", totals["origin_calls_saved"]),
            ("Bytes served", totals["bytes_served"]), ("Hit ratio", ratio),
            ("Store memory of this tenant's cache",
             f"{memory['bytes']} bytes in {memory['keys']} keys ({memory['backend']})"),
        ])
        return format_html("<table>{}</table>", rows)

    @admin.action(description="Warm the selected policies (cache.warm job)", permissions=["operate"])
    def warm_policies(self, request, queryset) -> None:
        for policy in queryset:
            try:
                run = services.cache_warm_submit(policy=policy, actor=request.actor)
            except ApplicationError as exc:
                self.message_user(request, f"{policy}: {exc.message}", messages.WARNING)
                continue
            self.message_user(request, f"{policy}: warming queued as job #{run.pk}.", messages.SUCCESS)

    @admin.action(description="Invalidate cached responses of the selected policies", permissions=["operate"])
    def invalidate_policies(self, request, queryset) -> None:
        try:
            for policy in queryset:
                services.cache_invalidate(tenant=policy.tenant, policy=policy, actor=request.actor)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Invalidated {queryset.count()} policies.", messages.SUCCESS)

    @admin.action(description="Invalidate tags…", permissions=["operate"])
    def invalidate_tags(self, request, queryset):
        # A superuser's selection may span tenants: the tags are invalidated in each of them, not the first.
        tenants = sorted({p.tenant for p in queryset.select_related("tenant")}, key=lambda t: t.slug)
        if not request.user.is_superuser:
            tenants = [request.tenant]
        names = ", ".join(str(t) for t in tenants)
        form = InvalidateTagsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                for tenant in tenants:
                    services.cache_invalidate(tenant=tenant, tags=form.cleaned_data["tags"], actor=request.actor)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"Invalidated {len(form.cleaned_data['tags'])} tags of {names}.",
                              messages.SUCCESS)
            return None
        return TemplateResponse(request, "admin/bulwark_caching/invalidate_tags.html", {
            **self.admin_site.each_context(request), "title": "Invalidate tags", "form": form,
            "queryset": queryset, "tenant": names, "opts": self.model._meta,
        })

    @admin.action(description="Invalidate the whole cache of the tenant", permissions=["operate"])
    def invalidate_tenant(self, request, queryset) -> None:
        tenants = {policy.tenant for policy in queryset}
        try:
            for tenant in tenants:
                services.cache_invalidate(tenant=tenant, everything=True, actor=request.actor)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Invalidated the cache of {', '.join(t.slug for t in tenants)}.",
                          messages.SUCCESS)
