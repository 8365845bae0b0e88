"""Endpoints of the caching benchmarks: one DRF list endpoint, and a slow view that counts its calls in Redis."""
from __future__ import annotations

import time

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.cache import cache_page
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.store import redis_client, store_key
from apps.tenancy.permissions import TenantRolePermission

ITEMS = [{"id": i, "name": f"item {i}", "price": i * 1.5, "tags": ["a", "b"]} for i in range(50)]


class Items(APIView):
    permission_classes = [TenantRolePermission]

    def get(self, request):
        return Response({"count": len(ITEMS), "results": ITEMS})


def slow(request, name: str):
    calls = redis_client().incr(store_key("bench-origin-calls", name))
    time.sleep(int(request.GET.get("ms", "200")) / 1000)
    return JsonResponse({"name": name, "call": calls})


urlpatterns = [
    path("bench/bulwark/items/", Items.as_view()),
    path("bench/cache-page/items/", cache_page(300)(Items.as_view())),
    path("bench/slow/<str:name>/", slow),
    path("bench/cache-page/slow/<str:name>/", cache_page(300)(slow)),
    path("", include("config.urls")),
]
