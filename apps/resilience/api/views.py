"""The resilience API: policies, live breakers with the decision endpoints, transitions, and scorecards."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFoundError
from apps.resilience import selectors, services
from apps.resilience.api import serializers as s
from apps.resilience.models import BreakerEvent, BreakerPolicy, ForcedState, RetryPolicy
from apps.tenancy.api.viewsets import TenantModelViewSet, TenantScopedViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role

OPERATOR_ACTIONS = {"force_open": Role.OPERATOR, "force_close": Role.OPERATOR, "disable": Role.OPERATOR,
                    "metrics_only": Role.OPERATOR, "reset": Role.OPERATOR}


def _live(policy: BreakerPolicy) -> dict:
    return {"id": policy.pk, "name": policy.name, "forced_state": policy.forced_state,
            **selectors.breaker_live(policy=policy)}


class BreakerPolicyViewSet(TenantModelViewSet):
    queryset = BreakerPolicy.objects.all()
    serializer_class = s.BreakerPolicyOutputSerializer
    input_serializer_class = s.BreakerPolicyInputSerializer
    filterset_fields = ["window_kind", "forced_state"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    action_roles = OPERATOR_ACTIONS

    def create_object(self, *, data: dict):
        return services.policy_create(model=BreakerPolicy, tenant=self.request.tenant, data=data)

    def update_object(self, *, instance, data: dict):
        return services.policy_update(policy=instance, data=data)

    def delete_object(self, *, instance) -> None:
        services.policy_delete(policy=instance)

    def _force(self, forced_state: str) -> Response:
        policy = services.breaker_force(policy=self.get_object(), forced_state=forced_state)
        return Response(s.OperatorActionSerializer(_live(policy)).data)

    @extend_schema(request=None, responses={200: s.OperatorActionSerializer})
    @action(detail=True, methods=["post"], url_path="force-open")
    def force_open(self, request, pk=None):
        return self._force(ForcedState.FORCED_OPEN)

    @extend_schema(request=None, responses={200: s.OperatorActionSerializer})
    @action(detail=True, methods=["post"], url_path="force-close")
    def force_close(self, request, pk=None):
        return self._force(ForcedState.FORCED_CLOSED)

    @extend_schema(request=None, responses={200: s.OperatorActionSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        return self._force(ForcedState.DISABLED)

    @extend_schema(request=None, responses={200: s.OperatorActionSerializer})
    @action(detail=True, methods=["post"], url_path="metrics-only")
    def metrics_only(self, request, pk=None):
        return self._force(ForcedState.METRICS_ONLY)

    @extend_schema(request=None, responses={200: s.OperatorActionSerializer})
    @action(detail=True, methods=["post"])
    def reset(self, request, pk=None):
        policy = self.get_object()
        services.breaker_reset(policy=policy)
        return Response(s.OperatorActionSerializer(_live(policy)).data)


class RetryPolicyViewSet(TenantModelViewSet):
    queryset = RetryPolicy.objects.all()
    serializer_class = s.RetryPolicyOutputSerializer
    input_serializer_class = s.RetryPolicyInputSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def create_object(self, *, data: dict):
        return services.policy_create(model=RetryPolicy, tenant=self.request.tenant, data=data)

    def update_object(self, *, instance, data: dict):
        return services.policy_update(policy=instance, data=data)

    def delete_object(self, *, instance) -> None:
        services.policy_delete(policy=instance)


class BreakerEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = BreakerEvent.objects.all()
    serializer_class = s.BreakerEventSerializer
    filterset_fields = ["name", "to_state"]
    ordering_fields = ["at"]


class BreakerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Live breakers by dependency name, and the decision endpoints services in any language call.

    acquire and report change breaker state (probe tickets, outcomes), so they need the operator role.
    """

    queryset = BreakerPolicy.objects.all()
    serializer_class = s.BreakerLiveSerializer
    lookup_field = "name"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"
    action_roles = {"acquire": Role.OPERATOR, "report": Role.OPERATOR, "report_batch": Role.OPERATOR}
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer([_live(p) for p in page], many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(_live(self.get_object())).data)

    @extend_schema(request=None, responses={200: s.DecisionSerializer})
    @action(detail=True, methods=["post"])
    def acquire(self, request, name=None):
        policy = self.get_object()
        decision = services.breaker_acquire(tenant=request.tenant, name=policy.name)
        return Response(s.DecisionSerializer(decision).data)

    @extend_schema(request=s.ReportInputSerializer, responses={202: s.ReportResultSerializer})
    @action(detail=True, methods=["post"])
    def report(self, request, name=None):
        policy = self.get_object()
        serializer = s.ReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.breaker_report_one(
            tenant=request.tenant, report=services.Report(name=policy.name, **serializer.validated_data)
        )
        return Response(s.ReportResultSerializer(result).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=s.BatchReportInputSerializer, responses={202: s.ReportResultSerializer},
        operation_id="v1_resilience_breakers_report_batch",
    )
    @action(detail=False, methods=["post"], url_path="report")
    def report_batch(self, request):
        serializer = s.BatchReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reports = [services.Report(**item) for item in serializer.validated_data["reports"]]
        result = services.breaker_report(tenant=request.tenant, reports=reports)
        return Response(s.ReportResultSerializer(result).data, status=status.HTTP_202_ACCEPTED)


class ScorecardView(APIView):
    permission_classes = [TenantRolePermission]
    read_role = Role.VIEWER

    @extend_schema(
        parameters=[OpenApiParameter("minutes", int, description="How many recent minutes (default 60).")],
        responses={200: s.ScorecardSerializer},
    )
    def get(self, request, name: str):
        query = s.ScorecardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not selectors.dependency_known(tenant=request.tenant, name=name):
            raise NotFoundError(f"No dependency named {name!r}.")
        card = selectors.dependency_scorecard(tenant=request.tenant, name=name, minutes=query.validated_data["minutes"])
        return Response(s.ScorecardSerializer(card).data)
