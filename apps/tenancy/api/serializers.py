from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.tenancy.models import ApiToken, Invitation, Membership, Tenant
from apps.tenancy.roles import Role


class TenantSerializer(StrictModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]


class UserBriefSerializer(serializers.ModelSerializer):
    """No email: an account may belong to several tenants, and its email is not any one tenant's to read."""

    class Meta:
        model = get_user_model()
        fields = ["id", "username"]


class MembershipOutputSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MembershipCreateSerializer(StrictSerializer):
    """A brand-new account and its membership. Existing accounts are invited instead."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(
        write_only=True, max_length=128, style={"input_type": "password"},
        help_text="Required: this creates a new account. To add an existing account, send an invitation.",
    )


class InvitationOutputSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "username", "role", "status", "expires_at", "invited_by", "created_at",
                  "accepted_at"]


class InvitationCreatedSerializer(InvitationOutputSerializer):
    token = serializers.SerializerMethodField(help_text="The single-use token. Shown once, never again.")
    accept_url = serializers.SerializerMethodField()

    class Meta(InvitationOutputSerializer.Meta):
        fields = [*InvitationOutputSerializer.Meta.fields, "token", "accept_url"]

    def get_token(self, invitation: Invitation) -> str:
        return self.context["token"]

    def get_accept_url(self, invitation: Invitation) -> str:
        return self.context["accept_url"]


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    username = serializers.CharField(required=False, allow_blank=True, default="", max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=100)


class MembershipUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class TokenOutputSerializer(serializers.ModelSerializer):
    # Null for a token created by a token (no user behind it).
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)
    display_prefix = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "display_prefix", "role", "created_by", "created_at",
            "expires_at", "revoked_at", "last_used_at",
        ]

    def get_display_prefix(self, token: ApiToken) -> str:
        return f"bwk_{token.prefix}_…"


class TokenCreatedSerializer(TokenOutputSerializer):
    token = serializers.SerializerMethodField(help_text="The secret. Shown once, never again.")

    class Meta(TokenOutputSerializer.Meta):
        fields = [*TokenOutputSerializer.Meta.fields, "token"]

    def get_token(self, token: ApiToken) -> str:
        return self.context["plaintext"]


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MembershipBriefSerializer(serializers.Serializer):
    tenant = serializers.CharField(source="tenant.slug")
    tenant_name = serializers.CharField(source="tenant.name")
    role = serializers.CharField()


class SwitchTenantSerializer(StrictSerializer):
    tenant = serializers.SlugField()
