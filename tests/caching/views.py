"""Tiny origin views for the caching tests: they count their calls so tests can tell hits from misses."""
from __future__ import annotations

import threading

from django.http import HttpResponse, JsonResponse
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from apps.caching.decorators import cache_policy
from apps.caching.responses import response_cache

calls: dict[str, int] = {}
state = {"version": "v1", "fail": False, "origin_s": 0.0}
_lock = threading.Lock()


def _count(name: str) -> int:
    with _lock:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]


def item(request, pk: int):
    n = _count("item")
    if state["origin_s"]:
        response_cache.clock.sleep(state["origin_s"])  # the injected clock: a test's fake one just moves
    if state["fail"]:
        return JsonResponse({"error": "down"}, status=503)
    actor = getattr(request, "actor", None)
    return JsonResponse({"pk": pk, "call": n, "version": state["version"], "tenant": request.tenant.slug,
                         "user": getattr(actor, "id", ""), "q": request.GET.urlencode()})


def who(request):
    """Names the principal it answered, so a test sees whose copy a client was served."""
    n = _count("who")
    actor = getattr(request, "actor", None)
    return JsonResponse({"actor": f"{getattr(actor, 'kind', '')}:{getattr(actor, 'id', '')}", "call": n})


def content(request):
    _count("content")
    return JsonResponse({"version": state["version"]})


def error(request):
    _count("error")
    return JsonResponse({"error": "nope"}, status=404)


def cookie(request):
    _count("cookie")
    response = JsonResponse({"ok": True})
    response.set_cookie("flavour", "oat")
    return response


def private(request):
    _count("private")
    response = JsonResponse({"secret": getattr(request.actor, "id", "")})
    response["Cache-Control"] = "private"
    return response


def echo_credentials(request):
    """A careless view that hands the asker's credentials back (a debug page, a token exchange)."""
    _count("echo")
    return JsonResponse({"authorization": request.headers.get("Authorization", ""),
                         "session": request.session.session_key or ""})


def localised(request):
    _count("localised")
    response = JsonResponse({"greeting": "bonjour" if "fr" in request.headers.get("Accept-Language", "") else "hello"})
    response["Vary"] = "Accept-Language"
    return response


def big(request):
    _count("big")
    return HttpResponse(b"x" * 5000)


def boom(request):
    _count("boom")
    if state["fail"]:
        raise RuntimeError("origin down")
    return JsonResponse({"version": state["version"]})


def payments(request):
    """Calls a dependency through its circuit breaker (resilience): BreakerOpen when the breaker is open."""
    from apps.resilience.decorators import breaker

    _count("payments")
    with breaker("payments"):
        return JsonResponse({"version": state["version"]})


@cache_policy("decorated")
def decorated(request):
    _count("decorated")
    if state["fail"]:
        raise RuntimeError("breaker open")
    return JsonResponse({"version": state["version"]})


@cache_policy("who")
def decorated_who(request):
    return who(request)


@api_view(["GET"])
@permission_classes([AllowAny])
def drf_item(request, pk: int):
    _count("drf")
    return Response({"pk": pk, "version": state["version"]})
