"""Rate-limit API: policies (CRUD, stats, reset a key) and the check endpoint other services call."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.ratelimit import decision, selectors, services, stats
from apps.ratelimit.api import serializers as s
from apps.ratelimit.models import RateLimitPolicy
from apps.tenancy.api.viewsets import TenantModelViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class PolicyViewSet(TenantModelViewSet):
    queryset = RateLimitPolicy.objects.all()
    serializer_class = s.PolicyOutputSerializer
    input_serializer_class = s.PolicyInputSerializer
    filterset_fields = ["enabled", "mode", "algorithm", "match_kind", "key_kind"]
    search_fields = ["name", "description"]
    ordering_fields = ["priority", "name", "created_at"]
    action_roles = {"stats": Role.VIEWER, "reset_key": Role.OPERATOR}

    def create_object(self, *, data: dict) -> RateLimitPolicy:
        return services.policy_create(tenant=self.request.tenant, data=data)

    def update_object(self, *, instance: RateLimitPolicy, data: dict) -> RateLimitPolicy:
        return services.policy_update(policy=instance, data=data)

    def delete_object(self, *, instance: RateLimitPolicy) -> None:
        services.policy_delete(policy=instance)

    @extend_schema(request=s.PolicyInputSerializer, responses={201: s.PolicyOutputSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(request=s.PolicyInputSerializer, responses={200: s.PolicyOutputSerializer})
    def update(self, request, *args, **kwargs):
        return super().update(request, *args, **kwargs)

    @extend_schema(request=s.PolicyInputSerializer, responses={200: s.PolicyOutputSerializer})
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("minutes", int, description="How many minutes back (1-1440, default 60).")],
        responses={200: s.StatsOutputSerializer},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Allowed, denied and shadow-denied decisions per minute."""
        policy = self.get_object()
        query = s.StatsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        stats.flush()  # this process's pending counts, so a reader sees its own traffic
        return Response(s.StatsOutputSerializer(selectors.policy_stats(policy=policy, **query.validated_data)).data)

    @extend_schema(request=s.ResetKeyInputSerializer, responses={200: s.ResetKeyOutputSerializer})
    @action(detail=True, methods=["post"], url_path="reset-key")
    def reset_key(self, request, pk=None):
        """Forget one key's counter under this policy (operator; audited)."""
        policy = self.get_object()
        serializer = s.ResetKeyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = serializer.validated_data["key"]
        existed = services.counter_reset(policy=policy, key=key, actor=request.actor)
        return Response(s.ResetKeyOutputSerializer({"key": key, "existed": existed}).data)


class CheckView(APIView):
    """Decide for another service: every descriptor's policies in one atomic step; a refusal is a
    normal answer (200 with allowed=false), not an error of this call."""

    permission_classes = [TenantRolePermission]
    write_role = Role.VIEWER

    @extend_schema(request=s.CheckInputSerializer, responses={200: s.CheckOutputSerializer})
    def post(self, request):
        serializer = s.CheckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        descriptors = [decision.Descriptor(**d) for d in serializer.validated_data["descriptors"]]
        verdict = decision.check(
            tenant=request.tenant, descriptors=descriptors, dry_run=serializer.validated_data["dry_run"]
        )
        return Response(s.CheckOutputSerializer(verdict).data, status=status.HTTP_200_OK)
