"""The audit API: the tenant's event list, and a streaming export of a date range."""
from __future__ import annotations

from types import SimpleNamespace

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from apps.audit.api.filters import AuditEventFilter
from apps.audit.api.serializers import AuditEventSerializer, ExportQuerySerializer
from apps.audit.conf import audit_settings
from apps.audit.export import CONTENT_TYPES, export_lines
from apps.audit.models import AuditEvent
from apps.audit.selectors import events_in_range
from apps.core.streaming import stream
from apps.tenancy.api.viewsets import TenantScopedViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The active tenant's audit events, newest first. Read-only: the trail is append-only."""

    queryset = AuditEvent.objects.select_related("tenant")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    search_fields = ["object_repr", "actor_display"]
    ordering_fields = ["timestamp", "id"]


class _FormatIsAParameter(DefaultContentNegotiation):
    """`?format=csv|jsonl` names the export format here, not one of DRF's renderers."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class AuditExportView(APIView):
    """Stream the active tenant's events of [start, end) as CSV or JSON lines, read in chunks."""

    permission_classes = [TenantRolePermission]
    content_negotiation_class = _FormatIsAParameter
    read_role = Role.VIEWER

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request):
        query = ExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        fmt, start, end = query.validated_data["format"], query.validated_data["start"], query.validated_data["end"]
        tenant = request.tenant
        events = events_in_range(tenant=tenant, start=start, end=end).iterator(
            chunk_size=audit_settings.EXPORT_CHUNK_SIZE
        )
        lines = export_lines(events, fmt=fmt, tenant_slugs={tenant.pk: tenant.slug})
        response = StreamingHttpResponse(stream(request._request, lines), content_type=CONTENT_TYPES[fmt])
        filename = f"audit-{tenant.slug}-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
