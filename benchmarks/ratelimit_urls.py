"""Benchmark-only endpoints: a trivial DRF view, the same behind DRF's AnonRateThrottle, and the project."""
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView


class Ping(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"ok": True})


class DrfThrottledPing(Ping):
    throttle_classes = [AnonRateThrottle]


urlpatterns = [
    path("bench/ping", Ping.as_view(), name="bench-ping"),
    path("bench/exact", Ping.as_view(), name="bench-exact"),
    path("bench/exact-hour", Ping.as_view(), name="bench-exact-hour"),
    path("bench/drf", DrfThrottledPing.as_view(), name="bench-drf"),
    path("", include("config.urls")),
]
