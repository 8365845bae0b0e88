"""Origin views for server processes: each call is counted in Redis so a test sees calls across processes."""
from __future__ import annotations

import time

from django.http import JsonResponse
from django.urls import include, path

from apps.core.store import redis_client, store_key


def slow(request, name: str):
    """Takes ?ms= milliseconds and counts itself under `name`."""
    calls = redis_client().incr(store_key("test-origin-calls", name))
    time.sleep(int(request.GET.get("ms", "200")) / 1000)
    return JsonResponse({"name": name, "call": calls, "tenant": request.tenant.slug if request.tenant else None})


urlpatterns = [
    path("slow/<str:name>/", slow, name="slow"),
    path("", include("config.urls")),
]
