from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.tenancy.models import ApiToken, Membership, Tenant
from apps.tenancy.roles import Role


class TenantSerializer(StrictModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]


class UserBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]


class MembershipOutputSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MembershipCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(required=False, write_only=True, max_length=128, style={"input_type": "password"})


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
