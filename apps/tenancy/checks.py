"""Deployment checks of tenancy: the platform login limit must be on and wired in front of every door."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

from apps.tenancy.login_limit import login_limit_settings

BACKEND = "apps.tenancy.login_limit.LoginLimitBackend"
MIDDLEWARE = "apps.tenancy.login_limit.LoginLimitMiddleware"


@register(Tags.security, deploy=True)
def check_login_limit(app_configs=None, **kwargs) -> list[Warning]:
    warnings = []
    if not login_limit_settings.ENABLED:
        warnings.append(Warning(
            "The platform login limit is off: the admin login and the API take unlimited sign-in attempts.",
            hint='Set BULWARK["LOGIN_LIMIT"]["ENABLED"] = True (unset BULWARK_LOGIN_LIMIT=0).',
            id="bulwark_tenancy.W001",
        ))
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", []))
    if not backends or backends[0] != BACKEND:
        warnings.append(Warning(
            f"{BACKEND} is not the first of AUTHENTICATION_BACKENDS, so sign-ins are not limited.",
            hint="Put it first: it refuses locked-out clients before any other backend checks a password.",
            id="bulwark_tenancy.W002",
        ))
    if MIDDLEWARE not in settings.MIDDLEWARE:
        warnings.append(Warning(
            f"{MIDDLEWARE} is not in MIDDLEWARE: locked-out sign-ins answer as wrong passwords, not 429.",
            id="bulwark_tenancy.W003",
        ))
    return warnings
