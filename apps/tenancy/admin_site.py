"""Bulwark's admin site: tenant members sign in without being Django staff, and switch their active tenant."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.tenancy import services
from apps.tenancy.admin_base import BoundedLookupsMixin
from apps.tenancy.middleware import SESSION_TENANT_KEY


def _may_use_admin(user) -> bool:
    if not (user.is_active and user.is_authenticated):
        return False
    return user.is_superuser or user.is_staff or user.bulwark_memberships.filter(tenant__is_active=True).exists()


class BulwarkAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        if not _may_use_admin(user):
            raise forms.ValidationError(
                "This account is not a member of any active tenant.", code="invalid_login"
            )


class BulwarkAdminSite(admin.AdminSite):
    site_header = "Bulwark"
    site_title = "Bulwark"
    index_title = "Control plane"
    login_form = BulwarkAdminAuthenticationForm

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin registered here, Django's and third parties' too, turns hostile filters into ?e=1."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, BoundedLookupsMixin):
            admin_class = type(admin_class.__name__, (BoundedLookupsMixin, admin_class), {})
        return super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return user.is_superuser or getattr(request, "tenant", None) is not None

    def get_urls(self):
        # Not admin_view: an invitee may be a member of no tenant yet, so signs in at the API's login page.
        accept = login_required(self.accept_invitation, login_url=reverse_lazy("rest_framework:login"))
        return [
            path("switch-tenant/", self.admin_view(require_POST(self.switch_tenant)), name="switch_tenant"),
            path("accept-invitation/", accept, name="accept_invitation"),
            *super().get_urls(),
        ]

    def accept_invitation(self, request: HttpRequest):
        """The link of an invitation mail: a confirmation page, then the accept service on POST."""
        token = (request.POST if request.method == "POST" else request.GET).get("token", "")[:100]
        error = ""
        if request.method == "POST":
            try:
                membership = services.invitation_accept(token=token, user=request.user)
            except (ApplicationError, ValidationError) as exc:
                error = getattr(exc, "message", None) or "; ".join(exc.messages)
            else:
                request.session[SESSION_TENANT_KEY] = membership.tenant_id
                messages.success(request, f"You joined {membership.tenant.name} as {membership.role}.")
                return HttpResponseRedirect(reverse("admin:index"))
        context = {**self.each_context(request), "title": "Accept an invitation", "token": token, "error": error}
        return TemplateResponse(request, "admin/bulwark_tenancy/accept_invitation.html", context,
                                status=400 if error else 200)

    def switch_tenant(self, request: HttpRequest) -> HttpResponseRedirect:
        target = request.POST.get("tenant", "")
        allowed = {str(m.tenant_id): m.tenant for m in getattr(request, "bulwark_memberships", [])}
        if target in allowed:
            request.session[SESSION_TENANT_KEY] = int(target)
            messages.success(request, f"Active tenant: {allowed[target].name}")
        else:
            messages.error(request, "You are not a member of that tenant.")
        next_url = request.POST.get("next") or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index")
        return HttpResponseRedirect(next_url)
