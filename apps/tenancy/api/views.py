from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ApplicationError
from apps.core.private import PrivateResponseMixin
from apps.tenancy import services
from apps.tenancy.api import serializers as s
from apps.tenancy.api.viewsets import TenantModelViewSet, TenantScopedViewSet
from apps.tenancy.middleware import SESSION_TENANT_KEY, TenantRefused, resolve_session_tenant
from apps.tenancy.models import ApiToken, Invitation, Membership, Tenant
from apps.tenancy.permissions import IsAuthenticatedPrincipal, IsSuperuser
from apps.tenancy.roles import Role


class MeView(PrivateResponseMixin, APIView):
    """Who asks: the body differs per principal, so it is `Cache-Control: private`."""

    permission_classes = [IsAuthenticatedPrincipal]

    @extend_schema(responses={200: dict})
    def get(self, request):
        token = getattr(request, "api_token", None)
        tenant = request.tenant
        return Response(
            {
                "principal": {"kind": request.actor.kind, "id": request.actor.id, "display": request.actor.display},
                "is_superuser": bool(getattr(request.user, "is_superuser", False)),
                "tenant": {"id": tenant.pk, "slug": tenant.slug, "name": tenant.name} if tenant else None,
                "role": request.role,
                "memberships": s.MembershipBriefSerializer(request.bulwark_memberships, many=True).data,
                "token": {"id": token.id, "name": token.name, "prefix": token.prefix} if token else None,
            }
        )


class SwitchTenantView(PrivateResponseMixin, APIView):
    """Choose the active tenant of a session; tokens are bound to one tenant and cannot switch."""

    permission_classes = [IsAuthenticatedPrincipal]

    @extend_schema(request=s.SwitchTenantSerializer, responses={200: dict})
    def post(self, request):
        if getattr(request, "api_token", None) is not None:
            raise ApplicationError("An API token belongs to one tenant and cannot switch.", code="token_bound")
        serializer = s.SwitchTenantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        request.META["HTTP_X_BULWARK_TENANT"] = serializer.validated_data["tenant"]
        try:
            tenant, role, _ = resolve_session_tenant(request._request, request.user)
        except TenantRefused as refused:
            raise ApplicationError(refused.message, code=refused.code, status=refused.status) from None
        request.session[SESSION_TENANT_KEY] = tenant.pk
        return Response({"tenant": tenant.slug, "role": role})


class TenantViewSet(viewsets.ModelViewSet):
    """Tenants of the platform: superusers only."""

    permission_classes = [IsSuperuser]
    queryset = Tenant.objects.all()
    serializer_class = s.TenantSerializer
    filterset_fields = ["is_active"]
    search_fields = ["slug", "name"]

    def perform_create(self, serializer) -> None:
        serializer.instance = services.tenant_create(**serializer.validated_data)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.tenant_update(tenant=serializer.instance, data=serializer.validated_data)


class MembershipViewSet(TenantModelViewSet):
    queryset = Membership.objects.select_related("user", "tenant")
    serializer_class = s.MembershipOutputSerializer
    input_serializer_class = s.MembershipCreateSerializer
    update_serializer_class = s.MembershipUpdateSerializer
    filterset_fields = ["role"]
    search_fields = ["user__username"]
    ordering_fields = ["created_at", "role"]

    def create_object(self, *, data: dict):
        return services.membership_create(tenant=self.request.tenant, **data)

    def update_object(self, *, instance, data: dict):
        return services.membership_update(membership=instance, role=data.get("role", instance.role))

    def delete_object(self, *, instance) -> None:
        services.membership_delete(membership=instance)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Create shows the secret once; tokens are revoked, never edited or deleted, so their history stays."""

    queryset = ApiToken.objects.select_related("created_by")
    serializer_class = s.TokenOutputSerializer
    input_serializer_class = s.TokenCreateSerializer
    filterset_fields = ["role"]
    search_fields = ["name", "prefix"]
    ordering_fields = ["created_at", "last_used_at", "expires_at"]

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def create(self, request):
        serializer = self.get_input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        token, plaintext = services.token_create(
            tenant=request.tenant, created_by=user, creator_role=request.role, **serializer.validated_data
        )
        body = s.TokenCreatedSerializer(token, context={"plaintext": plaintext}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.TokenOutputSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.token_revoke(token=self.get_object())
        return self.output(token)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Invitations of the active tenant (admins): the token is in the create response only."""

    queryset = Invitation.objects.select_related("invited_by")
    serializer_class = s.InvitationOutputSerializer
    input_serializer_class = s.InvitationCreateSerializer
    read_role = Role.ADMIN
    filterset_fields = ["status", "role"]
    search_fields = ["email", "username"]
    ordering_fields = ["created_at", "expires_at"]

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationCreatedSerializer})
    def create(self, request):
        serializer = self.get_input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        accept_url = request.build_absolute_uri(reverse("admin:accept_invitation"))
        invitation, token = services.invitation_create(
            tenant=request.tenant, invited_by=request.user, accept_url=accept_url, **serializer.validated_data
        )
        body = s.InvitationCreatedSerializer(
            invitation, context={"token": token, "accept_url": f"{accept_url}?token={token}"}
        ).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.InvitationOutputSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self.output(services.invitation_revoke(invitation=self.get_object()))


class AcceptInvitationView(PrivateResponseMixin, APIView):
    """The invitee, signed in with their own account (a session, not a tenant's token), accepts."""

    permission_classes = [IsAuthenticatedPrincipal]

    @extend_schema(request=s.InvitationAcceptSerializer, responses={201: s.MembershipBriefSerializer})
    def post(self, request):
        if getattr(request, "api_token", None) is not None or not getattr(request.user, "pk", None):
            raise ApplicationError("Accept an invitation signed in as yourself, not with a tenant's API token.",
                                   code="token_bound", status=403)
        serializer = s.InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.invitation_accept(token=serializer.validated_data["token"], user=request.user)
        return Response(s.MembershipBriefSerializer(membership).data, status=status.HTTP_201_CREATED)

