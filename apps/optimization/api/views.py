"""The optimization API: findings (list, retrieve, apply, rollback, triage) and load-test results. Thin."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action

from apps.optimization import selectors, services
from apps.optimization.api import serializers as s
from apps.optimization.models import Finding, LoadTest
from apps.tenancy.api.viewsets import TenantScopedViewSet
from apps.tenancy.roles import Role


class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Diagnosed bottlenecks, newest first; `?kind=&status=&severity=&route=&method=` filter the list."""

    queryset = Finding.objects.all()
    serializer_class = s.FindingSerializer
    filter_backends: list = []
    write_role = Role.OPERATOR
    action_roles = {"apply": Role.OPERATOR, "rollback": Role.OPERATOR, "triage": Role.OPERATOR}

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        query = s.FindingQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.finding_list(tenant=self.request.tenant, filters=query.validated_data)

    @extend_schema(parameters=[s.FindingQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: s.FindingSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Create or change the Bulwark policy the finding proposes (operator; audited)."""
        return self.output(services.finding_apply(finding=self.get_object()))

    @extend_schema(request=None, responses={200: s.FindingSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Undo an applied fix (operator; audited)."""
        return self.output(services.finding_rollback(finding=self.get_object()))

    @extend_schema(request=s.TriageSerializer, responses={200: s.FindingSerializer})
    @action(detail=True, methods=["post"])
    def triage(self, request, pk=None):
        """Accept, dismiss or reopen (operator; audited)."""
        finding = self.get_object()
        data = s.TriageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self.output(services.finding_triage(finding=finding, status=data.validated_data["status"]))


class LoadTestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Results of `loadtest` job runs (submit one through /api/v1/jobs/), newest first."""

    queryset = LoadTest.objects.all()
    serializer_class = s.LoadTestSerializer
    filter_backends: list = []
