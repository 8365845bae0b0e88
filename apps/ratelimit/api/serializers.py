"""Input and output serializers of the rate-limit API."""
from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.ratelimit.models import ROLE_CHOICES, RateLimitPolicy

POLICY_INPUT_FIELDS = [
    "name", "description", "match_kind", "match_value", "methods", "roles", "key_kind", "key_header",
    "algorithm", "rate", "period", "burst", "mode", "failure_mode", "priority", "enabled",
]


class PolicyInputSerializer(StrictModelSerializer):
    """Shapes and types only; the model's clean() gives the field messages of the rules (rate, burst,
    routes, patterns), so the admin and the API refuse the same things with the same words."""

    class Meta:
        model = RateLimitPolicy
        fields = POLICY_INPUT_FIELDS
        validators: list = []  # (tenant, name) uniqueness is checked by the model, which knows the tenant
        extra_kwargs = {"name": {"validators": []}}


class PolicyOutputSerializer(serializers.ModelSerializer):
    broken = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="Why the policy is not applied (a path pattern RE2 refuses, stored before that rule); null when fine.",
    )

    class Meta:
        model = RateLimitPolicy
        fields = ["id", *POLICY_INPUT_FIELDS, "broken", "created_at", "updated_at"]
        read_only_fields = fields


class StatsRowSerializer(serializers.Serializer):
    minute = serializers.DateTimeField()
    allowed = serializers.IntegerField()
    denied = serializers.IntegerField()
    shadow_denied = serializers.IntegerField()


class StatsTotalsSerializer(serializers.Serializer):
    allowed = serializers.IntegerField()
    denied = serializers.IntegerField()
    shadow_denied = serializers.IntegerField()


class StatsOutputSerializer(serializers.Serializer):
    minutes = serializers.IntegerField()
    totals = StatsTotalsSerializer()
    series = StatsRowSerializer(many=True)


class StatsQuerySerializer(StrictSerializer):
    minutes = serializers.IntegerField(min_value=1, max_value=1440, default=60)


class ResetKeyInputSerializer(StrictSerializer):
    key = serializers.CharField(max_length=500, help_text="The key value, e.g. ip:203.0.113.7 or user:42.")


class ResetKeyOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    existed = serializers.BooleanField()


KEY_SCHEME = (
    "The value limited. To share a counter with the middleware (and the reset-key action), name it as the "
    "middleware does for the policy's key kind: ip:<client address>, user:<user id>, token:<API token id>, "
    "header:<header value>, tenant:<tenant id>. Any other string (e.g. your customer's id) is a counter of "
    "its own."
)


class DescriptorSerializer(StrictSerializer):
    key = serializers.CharField(max_length=500, help_text=KEY_SCHEME)
    hits = serializers.IntegerField(
        min_value=0, max_value=1_000_000, default=1,
        help_text="Units to take; 0 reads the state (remaining, reset) without taking any.",
    )
    policy = serializers.CharField(max_length=64, required=False, help_text="A policy name; or give match attributes.")
    route = serializers.CharField(max_length=200, required=False)
    path = serializers.CharField(max_length=2000, required=False)
    method = serializers.CharField(max_length=10, required=False)
    role = serializers.CharField(
        max_length=16, required=False, help_text="One of: " + ", ".join(ROLE_CHOICES) + " (default anonymous)."
    )

    def validate_role(self, value: str) -> str:
        if value not in ROLE_CHOICES:
            raise serializers.ValidationError(f"Choose one of: {', '.join(ROLE_CHOICES)}.")
        return value

    def validate(self, attrs: dict) -> dict:
        named = "policy" in attrs
        matched = any(name in attrs for name in ("route", "path", "method", "role"))
        if named == matched:
            raise serializers.ValidationError("Give either a policy name or match attributes (route, path, method, role).")
        return attrs


class CheckInputSerializer(StrictSerializer):
    descriptors = DescriptorSerializer(many=True, allow_empty=False, max_length=20)
    dry_run = serializers.BooleanField(
        default=False, help_text="Decide as usual but take nothing and count nothing: would these hits pass now?"
    )


RETRY_AFTER_HELP = ("Seconds until the refused hits would pass, as a float (the Retry-After header of the "
                    "middleware rounds up to whole seconds); 0 when allowed; null when no wait helps (see reason).")
REASON_HELP = "Why no wait would make it pass (more units than the policy ever allows at once); null otherwise."


class PolicyDecisionSerializer(serializers.Serializer):
    descriptor = serializers.IntegerField(help_text="Index of the descriptor this answers.")
    policy = serializers.CharField(source="policy.name")
    key = serializers.CharField()
    allowed = serializers.BooleanField(source="outcome.allowed")
    shadow = serializers.BooleanField()
    degraded = serializers.BooleanField(help_text="Decided by the failure mode: the store was unreachable.")
    limit = serializers.IntegerField(source="outcome.limit")
    remaining = serializers.IntegerField(source="outcome.remaining")
    reset_s = serializers.IntegerField(source="outcome.reset_s")
    retry_after_s = serializers.FloatField(source="retry_after_exact_s", allow_null=True, help_text=RETRY_AFTER_HELP)
    reason = serializers.CharField(allow_null=True, help_text=REASON_HELP)


class CheckOutputSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    policy = serializers.CharField(source="deciding.policy.name", allow_null=True, default=None)
    limit = serializers.IntegerField(source="deciding.outcome.limit", allow_null=True, default=None)
    remaining = serializers.IntegerField(source="deciding.outcome.remaining", allow_null=True, default=None)
    reset_s = serializers.IntegerField(source="deciding.outcome.reset_s", allow_null=True, default=None)
    retry_after_s = serializers.FloatField(source="retry_after_exact_s", allow_null=True, help_text=RETRY_AFTER_HELP)
    reason = serializers.CharField(allow_null=True, help_text=REASON_HELP)
    decisions = PolicyDecisionSerializer(source="policies", many=True)
