"""Tenant resolution for every request, before rate limiting and caching run.

Sets `request.tenant`, `request.role`, `request.api_token` and `request.actor`, and refines the bound
request context. A bearer token gives tenant and role; a session user gets their active membership,
chosen by the `X-Bulwark-Tenant` header (API) or the session (admin switcher). A client never
reaches a tenant it is not a member of; superusers may act in any active tenant.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core import context
from apps.core.api.errors import error_body
from apps.core.context import ANONYMOUS, Actor
from apps.tenancy.login_limit import locked_out_response, login_failure_record, login_locked_out
from apps.tenancy.models import Tenant
from apps.tenancy.roles import Role
from apps.tenancy.selectors import TokenRejected, memberships_for_user, token_resolve

SESSION_TENANT_KEY = "bulwark_tenant_id"
TENANT_HEADER = "HTTP_X_BULWARK_TENANT"


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(error_body(status_code=status, code=code, message=message), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="bulwark"'
    return response


class TenantRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TokenLockedOut(Exception):
    def __init__(self, wait_s: int) -> None:
        super().__init__(wait_s)
        self.wait_s = wait_s


def resolve_session_tenant(request: HttpRequest, user) -> tuple[Tenant | None, str | None, list]:
    """(tenant, role, memberships) for a signed-in user; raises TenantRefused for a tenant they cannot use."""
    memberships = list(memberships_for_user(user=user))
    wanted_slug = request.META.get(TENANT_HEADER, "").strip()
    wanted_id = None if wanted_slug else request.session.get(SESSION_TENANT_KEY)
    if wanted_slug or wanted_id:
        for membership in memberships:
            if membership.tenant.slug == wanted_slug or membership.tenant_id == wanted_id:
                return membership.tenant, membership.role, memberships
        if user.is_superuser:
            lookup = {"slug": wanted_slug} if wanted_slug else {"pk": wanted_id}
            tenant = Tenant.objects.filter(is_active=True, **lookup).first()
            if tenant is not None:
                return tenant, Role.ADMIN, memberships
        if wanted_slug:
            raise TenantRefused(403, "tenant_forbidden", f"You are not a member of an active tenant {wanted_slug!r}.")
        request.session.pop(SESSION_TENANT_KEY, None)
    if memberships:
        # The oldest membership, not the first by slug: another tenant's admin can add any user by
        # username, and must not become that user's default tenant by picking a slug like "aaa".
        default = min(memberships, key=lambda membership: (membership.created_at, membership.pk))
        return default.tenant, default.role, memberships
    return None, None, memberships


class TenantMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None
        request.role = None
        request.api_token = None
        request.actor = ANONYMOUS
        request.bulwark_memberships = []
        try:
            self._resolve(request)
        except TenantRefused as refused:
            return _refuse(refused.status, refused.code, refused.message)
        except TokenLockedOut as locked:
            return locked_out_response(request, locked.wait_s)
        context.update(actor=request.actor, tenant=request.tenant)
        return self.get_response(request)

    def _resolve(self, request: HttpRequest) -> None:
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            try:
                token = token_resolve(raw=credentials)
            except TokenRejected as rejected:
                # A rejected token is a failed sign-in of the client IP; only failures pay the store round trip.
                ip = getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR")
                login_failure_record(ip=ip, username=None)
                if (wait_s := login_locked_out(ip=ip, username=None)) is not None:
                    raise TokenLockedOut(wait_s) from None
                raise TenantRefused(rejected.status, rejected.code, rejected.message) from None
            request.api_token = token
            request.tenant = token.tenant
            request.role = token.role
            request.actor = Actor(kind="token", id=str(token.id), display=token.principal_display())
            # A bearer token is not ambient authority like a cookie, so CSRF does not apply.
            request._dont_enforce_csrf_checks = True
            return
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return
        request.actor = Actor(kind="user", id=str(user.pk), display=user.get_username())
        tenant, role, memberships = resolve_session_tenant(request, user)
        request.tenant, request.role, request.bulwark_memberships = tenant, role, memberships
