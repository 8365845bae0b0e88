"""Input and output shapes of the alerting API (`/api/v1/alerting/`)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerting import channel_config
from apps.alerting.models import (
    Alert,
    AlertEvent,
    AlertRule,
    AlertState,
    Channel,
    Delivery,
    Severity,
    Silence,
)
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer

RULE_INPUT_FIELDS = [
    "name", "description", "enabled", "metric", "matchers", "comparator", "warning", "critical", "window_s", "for_s",
    "keep_firing_for_s", "group_by", "group_wait_s", "group_interval_s", "repeat_interval_s", "labels",
    "annotations", "channels",
]


class _UniqueNameMixin:
    """A name is unique per tenant: a clash is a 400 on `name`, not a constraint message naming the tenant."""

    taken = "This name is already used."

    def validate_name(self, name: str) -> str:
        clash = self.Meta.model.objects.for_tenant(self.context["request"].tenant).filter(name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(self.taken)
        return name


class TenantChannelsField(serializers.PrimaryKeyRelatedField):
    """Channel ids of the request's tenant only: another tenant's id is "does not exist", like a wrong one."""

    def get_queryset(self):
        return Channel.objects.for_tenant(self.context["request"].tenant)


class RuleInputSerializer(_UniqueNameMixin, StrictModelSerializer):
    taken = "A rule with this name already exists."
    channels = TenantChannelsField(many=True, required=False)

    class Meta:
        model = AlertRule
        fields = RULE_INPUT_FIELDS


class RuleOutputSerializer(serializers.ModelSerializer):
    firing = serializers.IntegerField(read_only=True, help_text="Alerts of this rule firing now.")
    pending = serializers.IntegerField(read_only=True, help_text="Alerts of this rule pending now.")

    class Meta:
        model = AlertRule
        fields = ["id", *RULE_INPUT_FIELDS, "firing", "pending", "created_at", "updated_at"]


class ChannelInputSerializer(_UniqueNameMixin, StrictModelSerializer):
    taken = "A channel with this name already exists."
    config = serializers.JSONField(
        required=False, help_text="Per kind. webhook: url. slack: webhook_url (secret). email: to (list). "
                                  "sms: url, to, from, body, content_type (json|form), auth_header, auth (secret).")

    class Meta:
        model = Channel
        fields = ["name", "kind", "config"]

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value


class ChannelOutputSerializer(serializers.ModelSerializer):
    config = serializers.SerializerMethodField(help_text="Secret keys appear masked; they are write-only.")

    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "config", "created_at", "updated_at"]

    @extend_schema_field(serializers.DictField())
    def get_config(self, obj: Channel) -> dict:
        return channel_config.masked(obj.kind, obj.config, obj.secrets)


class ChannelCreatedSerializer(ChannelOutputSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="A webhook channel's HMAC-SHA256 key, shown only in this response; empty for "
                                  "other kinds. Receivers check X-Bulwark-Signature: sha256=<hex of the raw body>.")

    class Meta(ChannelOutputSerializer.Meta):
        fields = [*ChannelOutputSerializer.Meta.fields, "secret"]


class SilenceInputSerializer(StrictModelSerializer):
    class Meta:
        model = Silence
        fields = ["matchers", "starts_at", "ends_at", "comment"]


class SilenceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "comment", "created_by", "created_at"]


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "rule", "fingerprint", "labels", "severity", "state", "value", "active_since", "fired_at",
                  "clear_since", "resolved_at", "changed_at", "notified_state", "acknowledged_at", "acknowledged_by"]


class AlertQuerySerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=AlertState.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    rule = serializers.IntegerField(min_value=1, max_value=2**62, required=False)
    fingerprint = serializers.CharField(max_length=32, required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class AlertEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEvent
        fields = ["id", "at", "from_state", "to_state", "value"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "channel", "alert", "notification", "status", "attempt", "response_code", "latency_ms",
                  "error", "sent_at"]


class DeliveryQuerySerializer(StrictSerializer):
    channel = serializers.IntegerField(min_value=1, max_value=2**62, required=False)
    alert = serializers.IntegerField(min_value=1, max_value=2**62, required=False)
    status = serializers.ChoiceField(choices=["sent", "failed"], required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)
