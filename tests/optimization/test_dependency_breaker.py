"""A call through the breaker transport's default per-host breaker (no policy row) counts as a breaker."""
from __future__ import annotations

import httpx
import pytest
from django.http import JsonResponse
from django.test import override_settings
from django.urls import include, path

from apps.optimization.models import RequestSample
from apps.resilience.errors import BreakerOpen
from apps.resilience.httpx import BreakerTransport
from benchmarks.optimization_demo import views as demo
from tests.optimization.conftest import kinds_on

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

PLANTED = "demo/upstream/with-timeout/"  # the same call without a breaker
GUARDED = "t/upstream/default-breaker/"
# Every call counts as slow, so both routes' dependency hurts their responses; only the breaker differs
# (the upstream's /ok answers at once, so the default breaker never opens and every call is recorded).
SLOW_EVERYTHING = {"OPTIMIZATION": {"DEPENDENCY_SLOW_MS": 0.001}}

_through_breaker = httpx.Client(timeout=2.0, transport=BreakerTransport())


def guarded(request):
    try:
        return JsonResponse({"rate": _through_breaker.get(f"{demo.UPSTREAM}/ok").json()["rate"]})
    except BreakerOpen:
        return JsonResponse({"error": "upstream unavailable"}, status=503)


urlpatterns = [path(GUARDED, guarded), path("", include("benchmarks.optimization_demo.urls"))]


def test_the_default_per_host_breaker_counts_as_a_breaker(drive, analyze, upstream):
    from apps.resilience.models import BreakerPolicy

    assert not BreakerPolicy.objects.exists()  # the transport's breaker named after the host has no policy
    with override_settings(BULWARK=SLOW_EVERYTHING):
        drive(PLANTED)
        drive(GUARDED)
        found = analyze()
    assert kinds_on(found, PLANTED) == {"dependency_failing_without_breaker"}, [c.line() for c in found]
    assert kinds_on(found, GUARDED) == set(), [c.line() for c in found if c.route == GUARDED]
    calls = [c for s in RequestSample.objects.filter(route=GUARDED) for c in s.calls]
    assert len(calls) == 30 and {c["breaker"] for c in calls} == {"127.0.0.1"}
    assert all(c["breaker"] is None for s in RequestSample.objects.filter(route=PLANTED) for c in s.calls)


def test_a_host_mapped_to_a_named_breaker_counts_too():
    from apps.optimization.analysis import RouteEvidence, detect_dependencies

    class Sample:
        status, wall_ms, cpu_ms, db_ms = 502, 500.0, 1.0, 0.0

        def __init__(self, breaker):
            self.calls = [{"host": "pay.example", "ms": 400.0, "timeout_s": 2.0, "status": 502, "error": "",
                           "breaker": breaker}]

    unguarded = RouteEvidence(None, "r/", "GET", [Sample(None) for _ in range(30)])
    mapped = RouteEvidence(None, "r/", "GET", [Sample("payments") for _ in range(30)])
    assert [c.kind for c in detect_dependencies(unguarded, breakers=set())] == ["dependency_failing_without_breaker"]
    assert detect_dependencies(mapped, breakers=set()) == []
    assert detect_dependencies(unguarded, breakers={"pay.example"}) == []
