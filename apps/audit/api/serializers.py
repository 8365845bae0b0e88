"""Serializers of the audit API: an event as output, and the query of an export as input."""
from __future__ import annotations

from datetime import timedelta

from rest_framework import serializers

from apps.audit.conf import audit_settings
from apps.audit.export import FORMATS
from apps.audit.models import AuditEvent
from apps.core.api.serializers import StrictSerializer


class AuditEventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "tenant", "timestamp", "actor_kind", "actor_id", "actor_display", "action", "object_type",
            "object_id", "object_repr", "changes", "request_id", "client_ip", "user_agent", "prev_hash", "hash",
        ]
        read_only_fields = fields


class ExportQuerySerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=FORMATS)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, attrs: dict) -> dict:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        max_days = audit_settings.EXPORT_MAX_DAYS
        if attrs["end"] - attrs["start"] > timedelta(days=max_days):
            raise serializers.ValidationError(
                {"end": [f"An export covers at most {max_days} days; use the audit.export job for more."]}
            )
        return attrs
