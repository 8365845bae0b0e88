"""The jobs API: submit, list, retrieve, cancel, retry, the registered types and per-type statistics."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.errors import NotFoundError
from apps.core.streaming import file_response
from apps.jobs import selectors, services
from apps.jobs.api.serializers import (
    JobRunFilterSerializer,
    JobRunSerializer,
    JobStatsSerializer,
    JobSubmitSerializer,
    JobTypeSerializer,
)
from apps.jobs.models import JobRun
from apps.tenancy.api.viewsets import TenantScopedViewSet
from apps.tenancy.roles import Role

LIST_FILTERS = [
    OpenApiParameter("type", str, description="Job type, e.g. jobs.retention"),
    OpenApiParameter("status", str, enum=[s.value for s in JobRun.Status]),
    OpenApiParameter("queued_after", OpenApiTypes.DATETIME),
    OpenApiParameter("queued_before", OpenApiTypes.DATETIME),
]


class JobRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = JobRun.objects.all()
    serializer_class = JobRunSerializer
    input_serializer_class = JobSubmitSerializer
    filter_backends: list = []
    action_roles = {"create": Role.OPERATOR, "cancel": Role.OPERATOR, "retry": Role.OPERATOR}

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        filters = JobRunFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.run_list(tenant=self.request.tenant, filters=filters.validated_data)

    @extend_schema(parameters=LIST_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=JobSubmitSerializer, responses={201: JobRunSerializer})
    def create(self, request, *args, **kwargs):
        data = self.get_input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.job_submit(
            type=data.validated_data["type"], params=data.validated_data["params"], tenant=request.tenant,
            submitted_by=request.actor, idempotency_key=data.validated_data["idempotency_key"], role=request.role,
        )
        return self.output(run, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JobRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self.output(services.run_cancel(run=self.get_object(), actor=request.actor))

    @extend_schema(request=None, responses={201: JobRunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self.output(services.run_retry(run=self.get_object(), actor=request.actor, role=request.role),
                           status.HTTP_201_CREATED)

    @extend_schema(responses=JobTypeSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)  # a plain list, as the schema now says
    def types(self, request):
        return Response(JobTypeSerializer(selectors.job_types(), many=True).data)

    @extend_schema(responses=JobStatsSerializer)
    @action(detail=False, methods=["get"])
    def stats(self, request):
        return Response(JobStatsSerializer(selectors.job_stats(tenant=request.tenant)).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The file a run's result names (e.g. an audit export), served from MEDIA_ROOT/exports/."""
        run = self.get_object()
        name = run.result.get("file") if isinstance(run.result, dict) else None
        exports = (Path(settings.MEDIA_ROOT) / "exports").resolve()
        path = (Path(settings.MEDIA_ROOT) / name).resolve() if name else None
        if path is None or not path.is_relative_to(exports) or not path.is_file():
            raise NotFoundError(f"Run {run.pk} has no downloadable file.")
        return file_response(request._request, path.open("rb"), as_attachment=True, filename=path.name)
