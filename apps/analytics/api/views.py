"""The analytics API: stored forecasts, anomalies, and pushing points of ingested series. Thin."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics import selectors, services
from apps.analytics.api import serializers as s
from apps.analytics.models import Anomaly, Forecast
from apps.tenancy.api.viewsets import TenantScopedViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class ForecastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Forecasts with 80 % intervals, refreshed by the `analytics.forecast_refresh` job.
    `?series=...&horizon=...` picks one series and cuts its points to the horizon; `threshold=` answers
    "when does it cross this?" in `threshold_crossing_at`."""

    queryset = Forecast.objects.all()
    serializer_class = s.ForecastSerializer
    filter_backends: list = []

    def _query(self) -> dict:
        query = s.ForecastQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "request", None) is not None and self.action in ("list", "retrieve"):
            context["query"] = self._query()
        return context

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        query = self._query()
        return selectors.forecast_list(tenant=self.request.tenant, series=query.get("series"),
                                       horizon=query.get("horizon"))

    @extend_schema(parameters=[s.ForecastQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class AnomalyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Detected anomalies, one per event, newest first."""

    queryset = Anomaly.objects.all()
    serializer_class = s.AnomalySerializer
    filter_backends: list = []

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        query = s.AnomalyQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return selectors.anomaly_list(tenant=self.request.tenant, series=q.get("series"), kind=q.get("kind"),
                                      since=q.get("since"), open_only=q["open"])

    @extend_schema(parameters=[s.AnomalyQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class PointsIngestView(APIView):
    """Push points of an `ingested:<name>` series (operator); same timestamp overwrites; all or nothing."""

    permission_classes = [TenantRolePermission]
    write_role = Role.OPERATOR

    @extend_schema(request=s.PointsIngestSerializer, responses={201: None})
    def post(self, request):
        data = s.PointsIngestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        points = [(p["timestamp"], p["value"]) for p in data.validated_data["points"]]
        written = services.points_ingest(tenant=request.tenant, series=data.validated_data["series"], points=points)
        return Response({"series": data.validated_data["series"], "written": written},
                        status=status.HTTP_201_CREATED)
