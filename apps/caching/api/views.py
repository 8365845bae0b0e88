"""The caching API: policies (CRUD, stats), invalidation and warming. Thin: every write is a service call."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.caching import selectors, services
from apps.caching.api import serializers as s
from apps.caching.models import CachePolicy
from apps.tenancy.api.viewsets import TenantModelViewSet
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class CachePolicyViewSet(TenantModelViewSet):
    queryset = CachePolicy.objects.all()
    serializer_class = s.CachePolicyOutputSerializer
    input_serializer_class = s.CachePolicyInputSerializer
    filterset_fields = ["enabled", "vary_on"]
    search_fields = ["name", "route_name", "path_pattern"]
    ordering_fields = ["name", "ttl_s", "created_at"]

    def create_object(self, *, data: dict) -> CachePolicy:
        return services.policy_create(tenant=self.request.tenant, data=data)

    def update_object(self, *, instance: CachePolicy, data: dict) -> CachePolicy:
        return services.policy_update(policy=instance, data=data)

    def delete_object(self, *, instance: CachePolicy) -> None:
        services.policy_delete(policy=instance)

    @extend_schema(request=s.CachePolicyInputSerializer, responses={201: s.CachePolicyOutputSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(request=s.CachePolicyInputSerializer, responses={200: s.CachePolicyOutputSerializer})
    def update(self, request, *args, **kwargs):
        return super().update(request, *args, **kwargs)

    @extend_schema(request=s.CachePolicyInputSerializer, responses={200: s.CachePolicyOutputSerializer})
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)

    @extend_schema(parameters=[s.CacheStatsQuerySerializer], responses={200: s.CachePolicyStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        policy = self.get_object()
        query = s.CacheStatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.policy_stats(policy=policy, minutes=query.validated_data["minutes"]))


class InvalidateView(APIView):
    """Invalidate cached responses and data of the tenant by tags, by policy, or all of it (operator)."""

    permission_classes = [TenantRolePermission]
    write_role = Role.OPERATOR

    @extend_schema(request=s.CacheInvalidateInputSerializer, responses={200: s.CacheInvalidateOutputSerializer})
    def post(self, request):
        serializer = s.CacheInvalidateInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scope = services.cache_invalidate(tenant=request.tenant, tags=data.get("tags"), policy=data.get("policy"),
                                          everything=data.get("all", False), actor=request.actor)
        return Response({"invalidated": scope})


class WarmView(APIView):
    """Queue the cache.warm job of a policy (operator); progress and result are on the job run."""

    permission_classes = [TenantRolePermission]
    write_role = Role.OPERATOR

    @extend_schema(request=s.CacheWarmInputSerializer, responses={202: s.CacheWarmOutputSerializer})
    def post(self, request):
        serializer = s.CacheWarmInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        run = services.cache_warm_submit(policy=serializer.validated_data["policy"], actor=request.actor)
        return Response({"job": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)
