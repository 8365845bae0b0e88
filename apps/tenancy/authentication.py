"""DRF authentication that reuses the token the tenant middleware already resolved."""
from __future__ import annotations

from rest_framework import authentication, exceptions

from apps.tenancy.selectors import ResolvedToken, TokenRejected, token_resolve


class TokenUser:
    """The request.user of a token request: authenticated, but no Django user and no staff powers."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ResolvedToken) -> None:
        self.token = token
        self.username = token.principal_display()

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


class TenantTokenAuthentication(authentication.BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        token = getattr(request._request, "api_token", None)
        if token is None:
            scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != self.keyword:
                return None
            try:  # installed without the tenant middleware: resolve here
                token = token_resolve(raw=credentials)
            except TokenRejected as rejected:
                raise exceptions.AuthenticationFailed(rejected.message) from None
            request._request.api_token = token
            request._request.tenant = token.tenant
            request._request.role = token.role
        return TokenUser(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="bulwark"'
