"""Who is on the other end of a console socket, and which tenant they watch.

A socket authenticates like the rest of Bulwark: a browser's session (the admin's active tenant, or
`?tenant=<slug>` for one the user is a member of), or `Authorization: Bearer <token>` for other clients
(the token's tenant; a `?tenant=` naming another is refused). The tenant is never taken on trust from the
client: anything else is refused before the socket is accepted.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import parse_qs

from apps.tenancy.middleware import TENANT_HEADER, TenantRefused, resolve_session_tenant
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

    @property
    def can_operate(self) -> bool:
        return role_at_least(self.role, Role.OPERATOR)


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def socket_principal(scope: dict) -> SocketPrincipal:
    """The tenant and role of a socket, or SocketRefused (4401 nobody, 4403 a tenant that is not theirs)."""
    wanted = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("tenant") or [""])[0].strip()[:100]
    scheme, _, credentials = _header(scope, b"authorization").partition(" ")
    if scheme.lower() == "bearer":
        try:
            token = token_resolve(raw=credentials)
        except TokenRejected as rejected:
            raise SocketRefused(UNAUTHENTICATED, rejected.message) from None
        if wanted and wanted != token.tenant.slug:
            raise SocketRefused(FORBIDDEN, "A token watches its own tenant only.")
        return SocketPrincipal(token.tenant, token.role, f"token {token.prefix}")
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
    return SocketPrincipal(tenant, role, user.get_username())
