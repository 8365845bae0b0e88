"""Who is on the other end of a console socket, and which tenant they watch.

A socket authenticates like the rest of Bulwark: a browser's session (the admin's active tenant, or
`?tenant=<slug>` for one the user is a member of), or `Authorization: Bearer <token>` for other clients
(the token's tenant; a `?tenant=` naming another is refused). The tenant is never taken on trust from the
client: anything else is refused before the socket is accepted.

An open socket is checked again every PRINCIPAL_RECHECK_S by its tenant's pulse (`hub.py`), as the store
says then: a revoked or expired token, a deactivated user or an ended session closes it with 4401, a user
no longer a member of the tenant it watches with 4403.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib import auth

from apps.tenancy.middleware import SESSION_TENANT_KEY, TENANT_HEADER, TenantRefused, resolve_session_tenant
from apps.tenancy.models import Tenant
from apps.tenancy.roles import Role, role_at_least
from apps.tenancy.selectors import TokenRejected, token_resolve

# WebSocket close codes (4000-4999 are the application's): 4401 like HTTP 401, 4403 like 403.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


class SocketRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class SocketPrincipal:
    tenant: Tenant
    role: str
    display: str
    # What is checked again while the socket is open: the bearer token, or the signed-in user and session.
    token: str | None = field(default=None, repr=False)
    user_id: int | None = None
    session_key: str | None = field(default=None, repr=False)

    @property
    def can_operate(self) -> bool:
        return role_at_least(self.role, Role.OPERATOR)

    @property
    def recheck_key(self) -> tuple:
        """Sockets with equal keys stand or fall together: one check answers for all of them."""
        return (self.tenant.pk, self.token, self.user_id, self.session_key)


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _refusal(rejected: TokenRejected) -> SocketRefused:
    """A token refused like HTTP refuses it: a disabled tenant is 4403 (403), anything else 4401."""
    return SocketRefused(FORBIDDEN if rejected.status == 403 else UNAUTHENTICATED, rejected.message)


def socket_principal(scope: dict) -> SocketPrincipal:
    """The tenant and role of a socket, or SocketRefused (4401 nobody, 4403 a tenant that is not theirs)."""
    wanted = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("tenant") or [""])[0].strip()[:100]
    scheme, _, credentials = _header(scope, b"authorization").partition(" ")
    if scheme.lower() == "bearer":
        try:
            token = token_resolve(raw=credentials)
        except TokenRejected as rejected:
            raise _refusal(rejected) from None
        if wanted and wanted != token.tenant.slug:
            raise SocketRefused(FORBIDDEN, "A token watches its own tenant only.")
        return SocketPrincipal(token.tenant, token.role, f"token {token.prefix}", token=credentials)
    user = scope.get("user")
    if user is None or not user.is_authenticated or not user.is_active:
        raise SocketRefused(UNAUTHENTICATED, "Sign in, or send a bearer token.")
    # The same resolution as an HTTP request's, on a request-shaped view of the socket's scope.
    request = SimpleNamespace(META={TENANT_HEADER: wanted} if wanted else {}, session=scope.get("session") or {})
    try:
        tenant, role, _memberships = resolve_session_tenant(request, user)
    except TenantRefused as refused:
        raise SocketRefused(FORBIDDEN, refused.message) from None
    if tenant is None:
        raise SocketRefused(FORBIDDEN, "This account is not a member of any active tenant.")
    session_key = getattr(scope.get("session"), "session_key", None)
    return SocketPrincipal(tenant, role, user.get_username(), user_id=user.pk, session_key=session_key)


def socket_principal_recheck(principal: SocketPrincipal) -> SocketPrincipal:
    """The principal of an open socket as the store says now (its role may have changed), or SocketRefused:
    4401 when its token or session no longer authenticates, 4403 when it may no longer watch its tenant."""
    if principal.token is not None:
        try:
            token = token_resolve(raw=principal.token)
        except TokenRejected as rejected:
            raise _refusal(rejected) from None
        return replace(principal, role=token.role)  # a token's tenant never changes
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=principal.session_key)
    user = auth.get_user(SimpleNamespace(session=session))  # also ends a session whose password changed
    if not user.is_authenticated or not user.is_active or user.pk != principal.user_id:
        raise SocketRefused(UNAUTHENTICATED, "The session has ended.")
    # Asked by id, the resolution answers the user's default tenant when the watched one is no longer theirs.
    request = SimpleNamespace(META={}, session={SESSION_TENANT_KEY: principal.tenant.pk})
    tenant, role, _memberships = resolve_session_tenant(request, user)
    if tenant is None or tenant.pk != principal.tenant.pk:
        raise SocketRefused(FORBIDDEN, f"No longer a member of the tenant {principal.tenant.slug!r}.")
    return replace(principal, role=role)
