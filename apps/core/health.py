"""Liveness and readiness probes, and the degraded flags components raise when they fall back."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.conf import core_settings
from apps.core.requests import PROBE_ATTR

log = logging.getLogger(__name__)

OK, DEGRADED, FAIL = "ok", "degraded", "fail"

_degraded: dict[str, tuple[str, float]] = {}
_degraded_lock = threading.Lock()
_checks: dict[str, Callable[[], tuple[str, str]]] = {}


def register_check(name: str, check: Callable[[], tuple[str, str]]) -> None:
    """A readiness check returns (status, detail); FAIL makes /readyz answer 503."""
    _checks[name] = check


def mark_degraded(component: str, reason: str) -> None:
    """Raise a degraded flag; logged once when it is raised, not on every call."""
    with _degraded_lock:
        if component not in _degraded:
            log.warning("%s degraded: %s", component, reason)
        _degraded[component] = (reason, time.time())


def mark_ok(component: str) -> None:
    if component in _degraded:
        with _degraded_lock:
            if _degraded.pop(component, None) is not None:
                log.warning("%s recovered", component)


def degraded_components() -> dict[str, str]:
    return {name: reason for name, (reason, _) in _degraded.items()}


def check_database() -> tuple[str, str]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return OK, connections["default"].vendor
    except Exception as exc:
        return FAIL, f"{exc.__class__.__name__}: {exc}"[:300]


def check_store() -> tuple[str, str]:
    backend = caches[core_settings.STORE_CACHE_ALIAS]
    try:
        from apps.core.store import redis_client

        client = redis_client()
        if client is not None:
            client.ping()
            return OK, "redis"
        backend.set("bulwark:readyz", "1", 5)
        return OK, "memory"
    except Exception as exc:
        return FAIL, f"{exc.__class__.__name__}: {exc}"[:300]


def readiness_report() -> tuple[bool, dict]:
    """Ready unless something the process cannot serve without fails: the database, any registered check,
    and the shared store only when HEALTH_REQUIRE_STORE says so. Without the store every app degrades
    (limits fail open or closed per policy, the cache is bypassed, breakers go local), so by default an
    outage answers 200 "degraded" naming the store instead of pulling every process out of the balancer."""
    checks = {"database": check_database(), "store": check_store()}
    for name, check in _checks.items():
        try:
            checks[name] = check()
        except Exception as exc:
            checks[name] = (FAIL, f"{exc.__class__.__name__}: {exc}"[:300])
    optional = set() if core_settings.HEALTH_REQUIRE_STORE else {"store"}
    ready = all(status != FAIL for name, (status, _) in checks.items() if name not in optional)
    degraded = degraded_components()
    for name in optional:
        if checks[name][0] == FAIL:
            degraded[name] = checks[name][1]
    overall = "fail" if not ready else ("degraded" if degraded or any(s == DEGRADED for s, _ in checks.values()) else "ok")
    body = {
        "status": overall,
        "checks": {name: {"status": status, "detail": detail} for name, (status, detail) in checks.items()},
        "degraded": degraded,
    }
    return ready, body


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, body = readiness_report()
    return JsonResponse(body, status=200 if ready else 503)


for _probe in (healthz, readyz):
    setattr(_probe, PROBE_ATTR, True)  # answered live: never served from the response cache
