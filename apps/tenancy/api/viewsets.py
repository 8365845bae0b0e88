"""The base of every tenant-scoped endpoint: scoped querysets, tenant set on create, role permissions.

A view lists its input and output serializers and the services that write; this class wires them so a
new endpoint is tenant-safe without anyone remembering to be.
"""
from __future__ import annotations

from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.services import model_create, model_delete, model_update
from apps.tenancy.permissions import TenantRolePermission
from apps.tenancy.roles import Role


class TenantScopedViewSet(viewsets.GenericViewSet):
    permission_classes = [TenantRolePermission]
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    action_roles: dict[str, str] = {}
    input_serializer_class = None
    update_serializer_class = None

    def get_queryset(self):
        return super().get_queryset().for_tenant(self.request.tenant)

    def get_input_serializer(self, *args, **kwargs):
        return self.input_serializer_class(*args, context=self.get_serializer_context(), **kwargs)

    def output(self, instance, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(instance).data, status=status_code)


class TenantModelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    """CRUD through services: override `create_object`, `update_object`, `delete_object` where there is logic."""

    def create_object(self, *, data: dict):
        return model_create(model=self.get_queryset().model, data=data, tenant=self.request.tenant)

    def update_object(self, *, instance, data: dict):
        return model_update(instance=instance, data=data)

    def delete_object(self, *, instance) -> None:
        model_delete(instance=instance)

    def create(self, request, *args, **kwargs):
        serializer = self.get_input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_object(data=serializer.validated_data)
        return self.output(instance, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer_class = self.update_serializer_class or self.input_serializer_class
        serializer = serializer_class(
            instance, data=request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        instance = self.update_object(instance=instance, data=serializer.validated_data)
        return self.output(instance)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def perform_destroy(self, instance) -> None:
        self.delete_object(instance=instance)
