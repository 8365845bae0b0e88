"""Serializers of the optimization API: findings out, filters and triage in."""
from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.optimization.models import Finding, Kind, LoadTest, Severity, Status


class FindingSerializer(serializers.ModelSerializer):
    applicable = serializers.BooleanField(read_only=True)

    class Meta:
        model = Finding
        fields = ["id", "kind", "route", "method", "subject", "severity", "status", "evidence", "recommendation",
                  "estimated_impact", "fix", "applicable", "applied", "applied_at", "before", "after", "measured_at",
                  "first_seen_at", "last_seen_at", "occurrences"]
        read_only_fields = fields


class FindingQuerySerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    route = serializers.CharField(max_length=255, required=False)
    method = serializers.CharField(max_length=10, required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class TriageSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=[Status.OPEN, Status.ACCEPTED, Status.DISMISSED])


class LoadTestSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoadTest
        fields = ["id", "job_run_id", "finding", "target", "params", "steps", "knee", "created_at"]
        read_only_fields = fields
