"""The platform login limit: failed sign-ins per client IP and per username, with a lockout, at every door.

Always on and independent of tenants (rate-limit policies belong to tenants, and logins have none). Doors:
Django's `authenticate()` (the admin login, `/api/auth/login/`, any form or view that calls it) through
`LoginLimitBackend`, first in AUTHENTICATION_BACKENDS, and bearer tokens through the tenant middleware.
Counters live in the Django cache (Redis when configured, so every process and host shares them); if the
cache is unreachable the limit fails open: logged once, `/readyz` says degraded, sign-ins keep working.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core import health
from apps.core.api.errors import API_PREFIX, error_body
from apps.core.conf import AppSettings, positive_number

log = logging.getLogger(__name__)

login_limit_settings = AppSettings(
    "LOGIN_LIMIT",
    defaults={
        # Off only for a deliberate reason: `check --deploy` warns while it is.
        "ENABLED": True,
        # Failed attempts within WINDOW_S that lock the client IP (every username) or the username (every IP).
        "FAILURES_PER_IP": 20,
        "FAILURES_PER_USERNAME": 5,
        "WINDOW_S": 900,
        # How long a lockout lasts; attempts while locked are refused without checking the password.
        "LOCKOUT_S": 900,
        "CACHE_ALIAS": "default",
    },
    validators={name: positive_number for name in ("FAILURES_PER_IP", "FAILURES_PER_USERNAME", "WINDOW_S", "LOCKOUT_S")},
)

COMPONENT = "login_limit"
LOCKED_OUT = "_bulwark_login_locked_out_s"


def _key(kind: str, value: str, *, lock: bool = False) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"bulwark:loginlimit:{'lock' if lock else 'fail'}:{kind}:{digest}"


def _subjects(*, ip: str | None, username: str | None) -> list[tuple[str, str, int]]:
    subjects = []
    if ip:
        subjects.append(("ip", ip, login_limit_settings.FAILURES_PER_IP))
    if username:
        subjects.append(("user", username.strip().lower()[:150], login_limit_settings.FAILURES_PER_USERNAME))
    return subjects


def login_locked_out(*, ip: str | None, username: str | None, now: float | None = None) -> int | None:
    """Seconds until the IP or username may try again, or None. None as well when the store is down."""
    if not login_limit_settings.ENABLED:
        return None
    now = time.time() if now is None else now
    keys = [_key(kind, value, lock=True) for kind, value, _ in _subjects(ip=ip, username=username)]
    if not keys:
        return None
    try:
        locks = caches[login_limit_settings.CACHE_ALIAS].get_many(keys)
    except Exception as exc:
        health.mark_degraded(COMPONENT, f"store unreachable, logins not limited: {exc.__class__.__name__}")
        return None
    health.mark_ok(COMPONENT)
    waits = [math.ceil(until - now) for until in locks.values() if until - now > 0]
    return max(waits) if waits else None


def login_failure_record(*, ip: str | None, username: str | None, now: float | None = None) -> None:
    """Count one failed attempt against the IP and the username; lock whichever reached its limit."""
    if not login_limit_settings.ENABLED:
        return
    now = time.time() if now is None else now
    cache = caches[login_limit_settings.CACHE_ALIAS]
    window_s, lockout_s = login_limit_settings.WINDOW_S, login_limit_settings.LOCKOUT_S
    try:
        for kind, value, limit in _subjects(ip=ip, username=username):
            key = _key(kind, value)
            cache.add(key, 0, timeout=window_s)
            if cache.incr(key) >= limit:
                cache.set(_key(kind, value, lock=True), now + lockout_s, timeout=math.ceil(lockout_s))
                cache.delete(key)
                log.warning("login limit: %s locked out for %s s after %s failures", kind, lockout_s, limit)
    except Exception as exc:
        health.mark_degraded(COMPONENT, f"store unreachable, logins not limited: {exc.__class__.__name__}")
        return
    health.mark_ok(COMPONENT)


def login_success_record(*, username: str | None) -> None:
    """A successful sign-in forgets the username's failures (the IP's stay: one good account must not
    reset an attacker's count)."""
    if not login_limit_settings.ENABLED or not username:
        return
    try:
        caches[login_limit_settings.CACHE_ALIAS].delete(_key("user", username.strip().lower()[:150]))
    except Exception as exc:
        health.mark_degraded(COMPONENT, f"store unreachable, logins not limited: {exc.__class__.__name__}")


def _ip(request: HttpRequest | None) -> str | None:
    return getattr(request, "client_ip", None) or (request.META.get("REMOTE_ADDR") if request is not None else None)


class LoginLimitBackend(ModelBackend):
    """Django's ModelBackend that first refuses a locked-out IP or username, before any password is checked.

    It replaces ModelBackend, first in AUTHENTICATION_BACKENDS: raising PermissionDenied makes
    `authenticate()` stop (no later backend is asked) and return None; the request is marked so that
    LoginLimitMiddleware answers 429 with Retry-After instead of the door's usual "wrong password".
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        wait_s = login_locked_out(ip=_ip(request), username=username or kwargs.get(get_user_model().USERNAME_FIELD))
        if wait_s is not None:
            if request is not None:
                setattr(request, LOCKED_OUT, wait_s)
            raise PermissionDenied("locked out")
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed, dispatch_uid="bulwark-login-limit-failed")
def _on_login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    if request is not None and getattr(request, LOCKED_OUT, None) is not None:
        return  # refused unchecked: it says nothing about the password
    login_failure_record(ip=_ip(request), username=credentials.get("username"))


@receiver(user_logged_in, dispatch_uid="bulwark-login-limit-success")
def _on_logged_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    login_success_record(username=user.get_username())


def locked_out_response(request: HttpRequest, wait_s: int) -> HttpResponse:
    message = f"Too many failed sign-in attempts; try again in {wait_s} s."
    if request.path.startswith(API_PREFIX):
        body = error_body(status_code=429, code="login_locked_out", message=message, retry_after_s=wait_s)
        response = JsonResponse(body, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait_s)
    return response


class LoginLimitMiddleware:
    """Turns a sign-in refused by LoginLimitBackend into a 429 with Retry-After, whichever view called
    `authenticate()` (the admin login form would otherwise just say the password was wrong)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        wait_s = getattr(request, LOCKED_OUT, None)
        if wait_s is not None:
            return locked_out_response(request, wait_s)
        return response
