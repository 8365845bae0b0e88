"""The admin's tenant scoping, one mixin every tenant-owned ModelAdmin uses.

Non-superusers see and edit only their active tenant's rows, foreign-key and many-to-many choices are
limited to that tenant, the tenant is filled in on save, and another tenant's object answers 404. Rights follow the
membership role: viewers read, `write_role` (admin by default) adds, changes and deletes.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import FieldDoesNotExist
from django.db import DataError
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404
from django.utils.text import smart_split

from apps.core.api.filters import MAX_SEARCH_TERMS
from apps.tenancy.models import TenantOwned
from apps.tenancy.roles import Role, role_at_least


class BoundedLookupsMixin:
    """Changelist queries that would fail or cost seconds in the database are bad lookups, not 500s.

    A NUL character (`?object_id=%00`): PostgreSQL text cannot hold one. More than MAX_SEARCH_TERMS
    search words: each adds an OR over every search field. Values the database still refuses (a year past
    9999) fail while the changelist counts its rows, so those errors are caught there. Django's admin
    answers bad lookups by redirecting to `?e=1`, and so does this.
    """

    def get_changelist_instance(self, request):
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("Null characters are not allowed.")
        if len(list(smart_split(request.GET.get(SEARCH_VAR, "")))) > MAX_SEARCH_TERMS:
            raise IncorrectLookupParameters(f"At most {MAX_SEARCH_TERMS} search terms.")
        try:
            return super().get_changelist_instance(request)
        except (DataError, OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class TenantScopedAdmin(BoundedLookupsMixin, admin.ModelAdmin):
    write_role = Role.ADMIN

    def _role_allows(self, request, role: str) -> bool:
        return request.user.is_superuser or role_at_least(getattr(request, "role", None), role)

    def has_module_permission(self, request) -> bool:
        return self._role_allows(request, Role.VIEWER)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._role_allows(request, Role.VIEWER)

    def has_add_permission(self, request) -> bool:
        return self._role_allows(request, self.write_role)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._role_allows(request, self.write_role)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._role_allows(request, self.write_role)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.for_tenant(getattr(request, "tenant", None))

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("tenant")
        return exclude

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            filters.insert(0, "tenant")
            return filters
        # Django's filter on a foreign key lists every row of the related model, other tenants' included;
        # the related-only filter lists the values this (scoped) changelist uses.
        return [
            (item, admin.RelatedOnlyFieldListFilter) if self._is_tenant_owned_relation(item) else item
            for item in filters
        ]

    def _is_tenant_owned_relation(self, item) -> bool:
        if not isinstance(item, str) or LOOKUP_SEP in item:
            return False
        try:
            related = self.model._meta.get_field(item).related_model
        except FieldDoesNotExist:
            return False
        return isinstance(related, type) and issubclass(related, TenantOwned)

    def _scope_choices(self, db_field, request, kwargs: dict) -> dict:
        related = db_field.related_model
        if not request.user.is_superuser and isinstance(related, type) and issubclass(related, TenantOwned):
            kwargs["queryset"] = related.objects.for_tenant(getattr(request, "tenant", None))
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._scope_choices(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        # e.g. an alert rule's notification channels: the choices are the active tenant's only.
        return super().formfield_for_manytomany(db_field, request, **self._scope_choices(db_field, request, kwargs))

    def save_model(self, request, obj, form, change) -> None:
        if not request.user.is_superuser or getattr(obj, "tenant_id", None) is None:
            obj.tenant = request.tenant
        super().save_model(request, obj, form, change)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index; an object of another tenant must look like no object at all.
        raise Http404(f"No {opts.verbose_name} with id {object_id!r}.")


class ComputedRowsAdmin(TenantScopedAdmin):
    """Rows that jobs compute (forecasts, anomalies, findings): shown (and deletable), never added or edited."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django checks the (refused) change permission of a POST before looking the object up, which would
        # answer 403 for another tenant's row; it must look absent instead (as the audit and jobs admins do).
        from django.contrib.admin.utils import unquote

        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r}.")
        return super().changeform_view(request, object_id, form_url, extra_context)
