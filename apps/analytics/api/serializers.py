"""Input and output shapes of the analytics API."""
from __future__ import annotations

import math

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.analytics.conf import analytics_settings
from apps.analytics.models import SERIES_MAX_LENGTH, Anomaly, AnomalyKind, Forecast
from apps.analytics.services import crossing_time
from apps.core.api.serializers import StrictSerializer


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("Must be a finite number.")
        return value


class ForecastQuerySerializer(serializers.Serializer):
    series = serializers.CharField(max_length=SERIES_MAX_LENGTH, required=False)
    horizon = serializers.IntegerField(min_value=1, max_value=168, required=False,
                                       help_text="Steps ahead (hours); the stored forecast is cut to it.")
    threshold = FiniteFloatField(required=False, help_text="Answer the capacity question for this threshold.")


class ForecastPointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    forecast = serializers.FloatField()
    lower80 = serializers.FloatField()
    upper80 = serializers.FloatField()


class ForecastSerializer(serializers.ModelSerializer):
    points = serializers.SerializerMethodField()
    horizon = serializers.SerializerMethodField()
    threshold = serializers.SerializerMethodField()
    threshold_crossing_at = serializers.SerializerMethodField()

    class Meta:
        model = Forecast
        fields = ["id", "series", "horizon", "step_s", "generated_at", "history_points", "model", "backtest",
                  "mase_model", "mase_seasonal_naive", "threshold", "threshold_crossing_at", "points"]

    def _query(self) -> dict:
        return self.context.get("query") or {}

    def _points(self, obj: Forecast) -> list:
        horizon = self._query().get("horizon")
        return obj.points[:horizon] if horizon else obj.points

    @extend_schema_field(OpenApiTypes.INT)
    def get_horizon(self, obj: Forecast) -> int:
        return len(self._points(obj))

    @extend_schema_field(ForecastPointSerializer(many=True))
    def get_points(self, obj: Forecast) -> list[dict]:
        return [{"timestamp": t, "forecast": p, "lower80": lo, "upper80": hi} for t, p, lo, hi in self._points(obj)]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_threshold(self, obj: Forecast) -> float | None:
        return self._query().get("threshold", obj.threshold)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_threshold_crossing_at(self, obj: Forecast):
        when = crossing_time(self._points(obj), self.get_threshold(obj))
        return when.isoformat() if when else None


class AnomalyQuerySerializer(serializers.Serializer):
    series = serializers.CharField(max_length=SERIES_MAX_LENGTH, required=False)
    kind = serializers.ChoiceField(choices=AnomalyKind.choices, required=False)
    since = serializers.DateTimeField(required=False)
    open = serializers.BooleanField(required=False, default=False)


class AnomalySerializer(serializers.ModelSerializer):
    class Meta:
        model = Anomaly
        fields = ["id", "kind", "series", "score", "value", "expected_low", "expected_high", "started_at",
                  "ended_at", "signals", "detected_at"]


class PointSerializer(StrictSerializer):
    timestamp = serializers.DateTimeField()
    value = FiniteFloatField()


class PointsIngestSerializer(StrictSerializer):
    series = serializers.RegexField(r"^ingested:[A-Za-z0-9_.:/{}-]{1,280}$", max_length=SERIES_MAX_LENGTH,
                                    help_text="`ingested:<name>`; letters, digits and _ . : / { } -")
    points = PointSerializer(many=True, allow_empty=False)

    def validate_points(self, value: list) -> list:
        if len(value) > analytics_settings.INGEST_MAX_POINTS:
            raise serializers.ValidationError(f"At most {analytics_settings.INGEST_MAX_POINTS} points per request.")
        return value
