"""Input and output of the monitoring API."""
from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from apps.core import histogram
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.core.clock import SYSTEM_CLOCK
from apps.core.validators import validate_finite
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import Thresholds
from apps.monitoring.recorder import METHODS
from apps.monitoring.selectors import SERIES_METRICS, STEPS, SUMMARY_SORTS, WINDOWS

ROUTE_MAX = 255


class EndpointsQuerySerializer(StrictSerializer):
    window = serializers.ChoiceField(choices=list(WINDOWS), default="1h")
    sort = serializers.ChoiceField(choices=[*SUMMARY_SORTS, *(f"-{s}" for s in SUMMARY_SORTS)], default="-count")
    # Accepted for the API's conventions; the list is one page (one row per endpoint, bounded by routes).
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1)


class EndpointSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    route = serializers.CharField()
    method = serializers.CharField()
    count = serializers.IntegerField()
    rps = serializers.FloatField()
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField()
    db_time_share = serializers.FloatField()
    queries_per_request = serializers.FloatField()


@extend_schema_serializer(many=False)  # the list action answers one object, not an array
class EndpointListSerializer(serializers.Serializer):
    """The endpoints answer: the window and sort it was read with, then one item per endpoint."""

    window = serializers.CharField()
    sort = serializers.CharField()
    results = EndpointSummarySerializer(many=True)


class SeriesQuerySerializer(StrictSerializer):
    step = serializers.ChoiceField(choices=list(STEPS), default="1m")
    window = serializers.ChoiceField(choices=list(WINDOWS), required=False,
                                     help_text="Default: 1h for step 1m, 7d for step 1h.")
    metric = serializers.MultipleChoiceField(choices=list(SERIES_METRICS), required=False)


class _Method(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data).upper()
        if value not in METHODS:
            raise serializers.ValidationError(f"Not an HTTP method; one of {', '.join(sorted(METHODS))}.")
        return value


# One histogram (one route, method and minute) holds at most this many requests, per bucket and in all:
# a batch then adds at most INGEST_MAX_HISTOGRAMS times this to a minute, far from what a bigint holds.
MAX_COUNT = 10**9
# How far ahead of the server's clock a pushed timestamp may be (clock skew of the sender).
INGEST_AHEAD_S = 300


def _finite_float(**kwargs) -> serializers.FloatField:
    return serializers.FloatField(validators=[validate_finite], **kwargs)


class _IngestTimestamp(serializers.DateTimeField):
    """An instant whose minute is still kept as minutes (MINUTE_RETENTION_HOURS) and not ahead of the server
    by more than INGEST_AHEAD_S: older figures would land past downsampling, later ones in no window yet."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        now = SYSTEM_CLOCK.time()
        retention_h = float(monitoring_settings.MINUTE_RETENTION_HOURS)
        minute_start = moment.timestamp() // 60 * 60
        if minute_start < now - retention_h * 3600 or moment.timestamp() > now + INGEST_AHEAD_S:
            raise serializers.ValidationError(
                f"Must lie within the last {retention_h:g} h (MINUTE_RETENTION_HOURS) and at most "
                f"{INGEST_AHEAD_S // 60} minutes ahead of the server's clock.")
        return moment


class IngestRecordSerializer(StrictSerializer):
    route = serializers.CharField(max_length=ROUTE_MAX)
    method = _Method(max_length=10)
    status = serializers.IntegerField(min_value=100, max_value=599)
    duration_ms = _finite_float(min_value=0, max_value=histogram.MAX_MS)
    timestamp = _IngestTimestamp()


class IngestHistogramSerializer(StrictSerializer):
    route = serializers.CharField(max_length=ROUTE_MAX)
    method = _Method(max_length=10)
    timestamp = _IngestTimestamp(help_text="Any instant of the minute the histogram covers.")
    gamma = _finite_float()
    offset = serializers.IntegerField(min_value=histogram.MIN_BUCKET, max_value=histogram.MAX_BUCKET)
    counts = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=MAX_COUNT),
                                   max_length=histogram.MAX_WIRE_BUCKETS, allow_empty=False)
    status_counts = serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=MAX_COUNT),
                                          allow_empty=False,
                                          help_text='Requests by status class: {"2xx": 120, "5xx": 3}.')
    sum_ms = _finite_float(min_value=0)
    min_ms = _finite_float(min_value=0, max_value=histogram.MAX_MS, required=False)
    max_ms = _finite_float(min_value=0, max_value=histogram.MAX_MS, required=False)

    def validate_gamma(self, value):
        if not math.isclose(value, histogram.GAMMA, rel_tol=1e-9):
            raise serializers.ValidationError(f"Must be {histogram.GAMMA!r} (relative error 1 %).")
        return value

    def validate_status_counts(self, value):
        bad = sorted(set(value) - {"1xx", "2xx", "3xx", "4xx", "5xx"})
        if bad:
            raise serializers.ValidationError(f"Unknown status classes {bad}; use 1xx..5xx.")
        return value

    def validate(self, data):
        if data["offset"] + len(data["counts"]) - 1 > histogram.MAX_BUCKET:
            raise serializers.ValidationError({"counts": ["Buckets beyond 24 h."]})
        total = sum(data["counts"])
        if total == 0:
            raise serializers.ValidationError({"counts": ["At least one count."]})
        if total > MAX_COUNT:
            raise serializers.ValidationError({"counts": [f"At most {MAX_COUNT} requests in one histogram."]})
        if sum(data["status_counts"].values()) != total:
            raise serializers.ValidationError({"status_counts": [f"Must add up to the bucket counts ({total})."]})
        return data


class IngestSerializer(StrictSerializer):
    batch_id = serializers.RegexField(r"^[A-Za-z0-9._:-]{1,128}$", help_text="Idempotency key of the batch.")
    # Lengths are checked by the view first (413), so the list fields only check shapes here.
    records = IngestRecordSerializer(many=True, required=False)
    histograms = IngestHistogramSerializer(many=True, required=False)

    def validate(self, data):
        if not data.get("records") and not data.get("histograms"):
            raise serializers.ValidationError({"records": ["Send records or histograms."]})
        return data


class IngestResultSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    duplicate = serializers.BooleanField()
    accepted = serializers.IntegerField()


class ThresholdsSerializer(StrictModelSerializer):
    class Meta:
        model = Thresholds
        fields = ["cpu_warning_pct", "cpu_critical_pct", "memory_warning_pct", "memory_critical_pct",
                  "response_time_warning_ms", "response_time_critical_ms", "error_rate_warning_pct",
                  "error_rate_critical_pct", "updated_at"]
        read_only_fields = ["updated_at"]
