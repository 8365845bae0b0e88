"""The benchmark's trivial DRF endpoint (no-store: the whole stack's cache lookup misses every time)."""
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class Ping(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"ok": True}, headers={"Cache-Control": "no-store"})


urlpatterns = [
    path("bench/ping", Ping.as_view(), name="bench-ping"),
    path("", include("config.urls")),
]
