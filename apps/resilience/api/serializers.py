"""Input and output serializers of the resilience API."""
from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.core.validators import validate_finite
from apps.resilience.models import BreakerEvent, BreakerPolicy, RetryPolicy

BREAKER_INPUT_FIELDS = [
    "name", "description", "window_kind", "window_size", "failure_rate_threshold_pct", "slow_call_duration_ms",
    "slow_call_rate_threshold_pct", "minimum_calls", "consecutive_failures", "open_duration_s",
    "open_duration_multiplier", "max_open_duration_s", "half_open_probes", "half_open_mode",
    "max_wait_in_half_open_s", "automatic_transition", "failure_exceptions",
    "ignored_exceptions", "failure_statuses", "ignored_statuses", "timeout_s", "max_concurrent", "bulkhead_scope",
]
RETRY_INPUT_FIELDS = [
    "name", "max_attempts", "backoff_base_ms", "backoff_cap_ms", "attempt_timeout_ms", "retry_exceptions",
    "retry_statuses", "budget_pct", "budget_min_retries_per_s",
]


class _UniqueNameMixin:
    """A name is unique per tenant; field validators come from the model, cross-field rules from its clean()."""

    def validate_name(self, name: str) -> str:
        clash = self.Meta.model.objects.for_tenant(self.context["request"].tenant).filter(name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A policy with this name already exists.")
        return name


# Thresholds are decimals (resilience4j takes floats): JSON numbers in and out, two decimal places.
_DECIMAL_PERCENT = {"coerce_to_string": False}


class BreakerPolicyInputSerializer(_UniqueNameMixin, StrictModelSerializer):
    class Meta:
        model = BreakerPolicy
        fields = BREAKER_INPUT_FIELDS
        extra_kwargs = {"failure_rate_threshold_pct": _DECIMAL_PERCENT, "slow_call_rate_threshold_pct": _DECIMAL_PERCENT}


class BreakerPolicyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BreakerPolicy
        fields = ["id", *BREAKER_INPUT_FIELDS, "forced_state", "created_at", "updated_at"]
        extra_kwargs = {"failure_rate_threshold_pct": _DECIMAL_PERCENT, "slow_call_rate_threshold_pct": _DECIMAL_PERCENT}


class RetryPolicyInputSerializer(_UniqueNameMixin, StrictModelSerializer):
    class Meta:
        model = RetryPolicy
        fields = RETRY_INPUT_FIELDS


class RetryPolicyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RetryPolicy
        fields = ["id", *RETRY_INPUT_FIELDS, "created_at", "updated_at"]


class BreakerEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = BreakerEvent
        fields = ["id", "name", "at", "from_state", "to_state", "reason", "calls", "failures", "slow_calls",
                  "failure_rate_pct", "slow_rate_pct", "consecutive_failures"]


class BreakerLiveSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    forced_state = serializers.CharField()
    state = serializers.CharField()
    shared_state = serializers.CharField()
    open_until = serializers.FloatField(allow_null=True)
    calls = serializers.IntegerField()
    failures = serializers.IntegerField()
    slow_calls = serializers.IntegerField()
    rates_computed = serializers.BooleanField(
        help_text="False while the window holds fewer than minimum_calls (resilience4j reports -1 then): "
                  "the rates are then null, not a raw rate of a few calls. In half-open the figures are the probes'."
    )
    failure_rate_pct = serializers.FloatField(allow_null=True)
    slow_rate_pct = serializers.FloatField(allow_null=True)
    consecutive_failures = serializers.IntegerField()
    half_open_mode = serializers.CharField()
    degraded = serializers.CharField(allow_blank=True, help_text="Why the policy cannot be compiled, if it cannot.")


class DecisionSerializer(serializers.Serializer):
    name = serializers.CharField()
    permitted = serializers.BooleanField()
    state = serializers.CharField()
    probe = serializers.BooleanField(help_text="A half-open probe ticket: report its outcome with probe=true.")
    retry_after_s = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    ticket = serializers.CharField(
        allow_null=True,
        help_text="The probe ticket (probe=true), or the gate ticket of a call started while the breaker is gated "
                  "(closed, few failures from opening): send it back with the report, so its share of the failure "
                  "budget is given back.",
    )


class ReportInputSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=["success", "failure", "ignored"])
    duration_ms = serializers.FloatField(min_value=0, max_value=86_400_000, validators=[validate_finite])
    cost = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1e9,
                                  validators=[validate_finite])
    probe = serializers.BooleanField(default=False)
    ticket = serializers.CharField(
        required=False, allow_null=True, max_length=64,
        help_text="The ticket from acquire. With probe=true, the probe's ticket (without it the oldest ticket still "
                  "out is used); a probe ticket not reported within PROBE_TIMEOUT_S is given back: its report answers "
                  "409 (batch: counted in expired_probes) and counts as ignored. With probe=false, a gate ticket: its "
                  "share of the failure budget is given back with the outcome.",
    )


class BatchReportItemSerializer(ReportInputSerializer):
    name = serializers.CharField(max_length=100)


class BatchReportInputSerializer(StrictSerializer):
    reports = BatchReportItemSerializer(many=True, allow_empty=False, max_length=1000)


class ReportResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    expired_probes = serializers.IntegerField(help_text="Probe reports whose ticket had expired: counted as ignored.")


class OperatorActionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    forced_state = serializers.CharField()
    state = serializers.CharField()


class ScorecardRowSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    failures = serializers.IntegerField()
    ignored = serializers.IntegerField()
    slow_calls = serializers.IntegerField()
    rejected = serializers.IntegerField()
    success_rate_pct = serializers.FloatField(allow_null=True)
    avg_ms = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    cost_per_call = serializers.FloatField(allow_null=True)


class ScorecardMinuteSerializer(ScorecardRowSerializer):
    minute = serializers.DateTimeField()


class ScorecardSerializer(serializers.Serializer):
    name = serializers.CharField()
    minutes = serializers.IntegerField()
    total = ScorecardRowSerializer()
    per_minute = ScorecardMinuteSerializer(many=True)


class ScorecardQuerySerializer(StrictSerializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, default=60)
