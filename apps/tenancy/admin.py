from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.core.errors import ApplicationError
from apps.tenancy import services
from apps.tenancy.admin_base import BoundedLookupsMixin, TenantScopedAdmin
from apps.tenancy.models import ApiToken, Invitation, InvitationStatus, Membership, Tenant
from apps.tenancy.roles import Role


@admin.register(Tenant)
class TenantAdmin(BoundedLookupsMixin, admin.ModelAdmin):
    list_display = ["slug", "name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        tenant = getattr(request, "tenant", None)
        return queryset.filter(pk=tenant.pk) if tenant else queryset.none()

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser or getattr(request, "tenant", None) is not None

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        from django.http import Http404

        raise Http404(f"No tenant with id {object_id!r}.")


class MembershipForm(forms.ModelForm):
    """Only platform superusers add existing accounts here (tenant admins send invitations); members are
    named by username so nobody browses the list of every account."""

    username = forms.CharField(max_length=150)
    active_tenant = None  # set per request by MembershipAdmin.get_form; a superuser's form has a tenant field

    class Meta:
        model = Membership
        fields = ["username", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()
            self.fields["username"].disabled = True

    def clean_username(self):
        username = self.cleaned_data["username"]
        if self.instance.pk:
            return self.instance.user.get_username()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationError("No such user.")
        self.instance.user = user
        return username

    def clean(self):
        # The service's rules as form errors: raised later in save_model they would be a 500 or a
        # "changed successfully" page beside an error.
        cleaned = super().clean()
        try:
            if not self.instance.pk and self.instance.user_id is not None:
                tenant = cleaned.get("tenant") or self.active_tenant
                if tenant is not None:
                    services.membership_check_new(tenant=tenant, user=self.instance.user)
            elif self.instance.pk and cleaned.get("role") not in (None, Role.ADMIN):
                services.membership_check_admins_remain(memberships=[self.instance])
        except ValidationError as exc:
            self.add_error(None, exc)
        except ApplicationError as exc:
            self.add_error("role", exc.message)
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "tenant__slug"]
    list_select_related = ["user", "tenant"]

    def has_add_permission(self, request) -> bool:
        # A tenant admin enrolling an existing account by username could pull in anyone: they invite instead.
        return request.user.is_superuser

    def get_form(self, request, obj=None, change=False, **kwargs):
        if request.user.is_superuser:
            kwargs["fields"] = ["username", "tenant", "role"]
        form = super().get_form(request, obj, change, **kwargs)
        form.active_tenant = getattr(request, "tenant", None)
        return form

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another tenant would slip past the last-admin rule: delete and add instead.
        return ["tenant"] if obj is not None and request.user.is_superuser else []

    def save_model(self, request, obj, form, change) -> None:
        if change:
            if "role" in form.changed_data:
                try:
                    services.membership_update(membership=obj, role=obj.role)
                except ApplicationError as exc:
                    messages.error(request, exc.message)
            return
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant
        membership = services.membership_create(tenant=tenant, username=obj.user.get_username(), role=obj.role)
        obj.pk, obj.tenant = membership.pk, membership.tenant

    def get_deleted_objects(self, objs, request):
        # Listed as "protected", Django's delete page and delete action refuse instead of deleting.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        try:
            services.membership_check_admins_remain(memberships=objs)
        except ApplicationError as exc:
            protected = [*protected, exc.message]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj) -> None:
        services.membership_delete(membership=obj)

    def delete_queryset(self, request, queryset) -> None:
        services.memberships_delete(memberships=queryset)


class ApiTokenAddForm(forms.ModelForm):
    creator_role = None  # set per request by ApiTokenAdmin.get_form

    class Meta:
        model = ApiToken
        fields = ["name", "role", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        if "role" in cleaned and "expires_at" in cleaned:
            try:
                services.token_check_new(
                    role=cleaned["role"], creator_role=self.creator_role, expires_at=cleaned["expires_at"]
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    list_display = ["name", "display_prefix", "tenant", "role", "created_by", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter), "expires_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "revoked_at", "last_used_at"]
    actions = ["revoke_tokens"]
    list_select_related = ["tenant", "created_by"]

    @admin.display(description="Prefix")
    def display_prefix(self, token: ApiToken) -> str:
        return f"bwk_{token.prefix}_…"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
            if request.user.is_superuser:
                kwargs["fields"] = ["tenant", "name", "role", "expires_at"]
            form = super().get_form(request, obj, change, **kwargs)
            form.creator_role = self._creator_role(request)
            return form
        return super().get_form(request, obj, change, **kwargs)

    def _creator_role(self, request) -> str | None:
        return Role.ADMIN if request.user.is_superuser else request.role

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a token's secret, tenant and role never change; revoke and create another
            return [*self.readonly_fields, "tenant", "name", "role", "expires_at"]
        return []

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant
        token, plaintext = services.token_create(
            tenant=tenant, name=obj.name, role=obj.role, created_by=request.user,
            creator_role=self._creator_role(request), expires_at=obj.expires_at,
        )
        form.instance = token
        obj.pk = token.pk
        messages.warning(request, f"Token created. Copy it now, it will not be shown again: {plaintext}")

    @admin.action(description="Revoke selected tokens", permissions=["revoke_tokens"])
    def revoke_tokens(self, request, queryset) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.token_revoke(token=token)
            revoked += 1
        messages.success(request, f"Revoked {revoked} token(s).")

    def has_revoke_tokens_permission(self, request) -> bool:
        return self._role_allows(request, self.write_role)


class InvitationAddForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "username", "role"]

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("email")) == bool(cleaned.get("username")):
            self.add_error(None, "Give an email or a username (one of them).")
        return cleaned


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite by email or username; the invitee accepts while signed in. Nothing about accounts is shown."""

    list_display = ["__str__", "tenant", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "username"]
    readonly_fields = ["status", "invited_by", "created_at", "expires_at", "accepted_at"]
    actions = ["revoke_invitations"]
    list_select_related = ["tenant", "invited_by"]

    def has_view_permission(self, request, obj=None) -> bool:
        return self._role_allows(request, Role.ADMIN)

    def has_module_permission(self, request) -> bool:
        return self._role_allows(request, Role.ADMIN)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = InvitationAddForm
            if request.user.is_superuser:
                kwargs["fields"] = ["tenant", "email", "username", "role"]
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [*self.readonly_fields, "tenant", "email", "username", "role"]
        return []

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant
        accept_url = request.build_absolute_uri(reverse("admin:accept_invitation"))
        invitation, token = services.invitation_create(
            tenant=tenant, email=obj.email, username=obj.username, role=obj.role, invited_by=request.user,
            accept_url=accept_url,
        )
        form.instance = invitation
        obj.pk = invitation.pk
        messages.warning(request, f"Invitation created; it is mailed where an address is known. Its accept link, "
                                  f"shown once: {accept_url}?token={token}")

    @admin.action(description="Revoke selected invitations", permissions=["revoke_invitations"])
    def revoke_invitations(self, request, queryset) -> None:
        revoked = 0
        for invitation in queryset.filter(status=InvitationStatus.PENDING):
            services.invitation_revoke(invitation=invitation)
            revoked += 1
        messages.success(request, f"Revoked {revoked} invitation(s).")

    def has_revoke_invitations_permission(self, request) -> bool:
        return self._role_allows(request, self.write_role)

