"""The monitoring API (thin: selectors read, services write) and the Prometheus endpoint."""
from __future__ import annotations

import hmac
import ipaddress

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.errors import error_body
from apps.core.api.parsers import BoundedJSONParser, PayloadTooLarge
from apps.core.clock import SYSTEM_CLOCK
from apps.core.net import client_ip
from apps.monitoring import prometheus, selectors, services
from apps.monitoring.api import serializers as s
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.health import health_report
from apps.monitoring.models import Endpoint
from apps.tenancy.api.viewsets import TenantScopedViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class EndpointViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Per-endpoint figures of the tenant over a window, and an endpoint's series."""

    queryset = Endpoint.objects.all()
    serializer_class = s.EndpointSummarySerializer
    pagination_class = None

    @extend_schema(parameters=[s.EndpointsQuerySerializer], responses={200: s.EndpointListSerializer})
    def list(self, request):
        query = s.EndpointsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = selectors.endpoint_summaries(tenant=request.tenant, include_idle=True,
                                             window_s=selectors.WINDOWS[query.validated_data["window"]])
        sort = query.validated_data["sort"]
        key = sort.lstrip("-")
        present = sorted((i for i in items if i[key] is not None), key=lambda i: i[key], reverse=sort.startswith("-"))
        items = present + [i for i in items if i[key] is None]  # rows without a figure last either way
        return Response({"window": query.validated_data["window"], "sort": sort, "results": items})

    def retrieve(self, request, pk=None):
        endpoint = self.get_object()
        items = selectors.endpoint_summaries(tenant=request.tenant, window_s=selectors.WINDOWS["1h"])
        found = next((i for i in items if i["route"] == endpoint.route and i["method"] == endpoint.method), None)
        return Response(found or {"id": endpoint.pk, "route": endpoint.route, "method": endpoint.method, "count": 0,
                                  "rps": 0.0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "error_rate": 0.0,
                                  "db_time_share": 0.0, "queries_per_request": 0.0})

    @extend_schema(parameters=[s.SeriesQuerySerializer], responses={200: inline_serializer("EndpointSeries", {
        "id": serializers.IntegerField(), "route": serializers.CharField(), "method": serializers.CharField(),
        "step": serializers.CharField(), "window": serializers.CharField(),
        "series": serializers.DictField(child=serializers.ListField(child=serializers.ListField())),
    })})
    @action(detail=True, methods=["get"])
    def series(self, request, pk=None):
        endpoint = self.get_object()
        query = s.SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        step = query.validated_data["step"]
        window = query.validated_data.get("window") or ("1h" if step == "1m" else "7d")
        step_s, window_s = selectors.STEPS[step], selectors.WINDOWS[window]
        now = SYSTEM_CLOCK.time()
        start, end = selectors.window_bounds(window_s=window_s, now=now)
        metrics = sorted(query.validated_data.get("metric") or selectors.SERIES_METRICS)
        series = {
            metric: [[at.isoformat(), value] for at, value in selectors.endpoint_series(
                tenant=request.tenant, route=endpoint.route, method=endpoint.method, metric=metric,
                start=start, end=end + 1e-6, step_s=step_s)]
            for metric in metrics
        }
        return Response({"id": endpoint.pk, "route": endpoint.route, "method": endpoint.method, "step": step,
                         "window": window, "series": series})


class IngestView(APIView):
    """Request records or pre-aggregated histograms from services outside Django (operator token)."""

    permission_classes = [TenantRolePermission]
    parser_classes = [BoundedJSONParser]
    write_role = Role.OPERATOR

    @property
    def max_body_bytes(self) -> int:
        """The body limit BoundedJSONParser applies here: a full batch is larger than other endpoints' bodies."""
        return int(monitoring_settings.INGEST_MAX_BYTES)

    @extend_schema(request=s.IngestSerializer, responses={200: s.IngestResultSerializer, 202: s.IngestResultSerializer})
    def post(self, request):
        body = request.data
        if isinstance(body, dict):
            for field, limit in (("records", monitoring_settings.INGEST_MAX_RECORDS),
                                 ("histograms", monitoring_settings.INGEST_MAX_HISTOGRAMS)):
                items = body.get(field)
                if isinstance(items, list) and len(items) > limit:
                    raise PayloadTooLarge(f"At most {limit} {field} per batch; got {len(items)}.")
        serializer = s.IngestSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        result = services.ingest_batch(tenant=request.tenant, data=serializer.validated_data)
        return Response(result, status=200 if result["duplicate"] else 202)


class ThresholdsView(APIView):
    """The tenant's warning and critical levels (viewer reads, admin writes) and each dimension's state."""

    permission_classes = [TenantRolePermission]
    write_role = Role.ADMIN

    def _answer(self, request, thresholds):
        return Response({**s.ThresholdsSerializer(thresholds).data,
                         "states": selectors.threshold_states(tenant=request.tenant)})

    @extend_schema(responses={200: s.ThresholdsSerializer})
    def get(self, request):
        return self._answer(request, services.thresholds_get(tenant=request.tenant))

    @extend_schema(request=s.ThresholdsSerializer, responses={200: s.ThresholdsSerializer})
    def patch(self, request):
        serializer = s.ThresholdsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self._answer(request, services.thresholds_update(tenant=request.tenant, data=serializer.validated_data))

    @extend_schema(request=s.ThresholdsSerializer, responses={200: s.ThresholdsSerializer})
    def put(self, request):
        serializer = s.ThresholdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(request, services.thresholds_update(tenant=request.tenant, data=serializer.validated_data))


class HealthView(APIView):
    """Every check with its state and figure; the overall state is the worst."""

    permission_classes = [TenantRolePermission]

    @extend_schema(responses={200: inline_serializer("MonitoringHealth", {
        "state": serializers.ChoiceField(choices=["ok", "warning", "critical"]),
        "checks": serializers.DictField(child=serializers.DictField()),
    })})
    def get(self, request):
        return Response(health_report(tenant=request.tenant))


class SystemView(APIView):
    """The newest system sample of each host (CPU, memory, disk, load, stores, workers)."""

    permission_classes = [TenantRolePermission]

    @extend_schema(responses={200: inline_serializer("MonitoringSystem", {
        "hosts": serializers.ListField(child=serializers.DictField()),
    })})
    def get(self, request):
        samples = selectors.system_samples(limit=50)
        latest = {}
        for sample in samples:
            latest.setdefault(sample["host"], sample)
        return Response({"hosts": list(latest.values())})


def _metrics_allowed(request: HttpRequest) -> bool:
    token = monitoring_settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    allowed = monitoring_settings.METRICS_ALLOW_IPS
    if allowed:
        address = client_ip(request)
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in allowed)
    return False


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; needs `Authorization: Bearer <METRICS_TOKEN>` or an address in METRICS_ALLOW_IPS."""
    from django.http import JsonResponse

    if not _metrics_allowed(request):
        response = JsonResponse(error_body(status_code=401, code="not_authenticated",
                                           message="A metrics token or an allowed address is required."), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="bulwark-metrics"'
        return response
    return HttpResponse(prometheus.render(), content_type=CONTENT_TYPE_LATEST)
