"""The latency benchmark's endpoint: authenticated with an API token (so monitoring records the tenant);
`?fail=1` answers 503."""
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView


class Flaky(APIView):
    throttle_classes: list = []

    def get(self, request):
        status = 503 if request.query_params.get("fail") == "1" else 200
        return Response({"ok": status == 200}, status=status, headers={"Cache-Control": "no-store"})


urlpatterns = [
    path("bench/flaky", Flaky.as_view(), name="bench-flaky"),
    path("", include("config.urls")),
]
