"""The resilience app's job types: retention of breaker history and scorecards."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.jobs.registry import job_type
from apps.resilience.conf import resilience_settings
from apps.resilience.services import history_purge


class RetentionParams(StrictSerializer):
    older_than_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False,
        help_text="Delete history older than this; default BULWARK['RESILIENCE']['RETENTION_DAYS'].",
    )


@job_type("resilience.retention", params=RetentionParams, timeout_s=600, max_attempts=3, cron="27 3 * * *")
def retention(ctx, params: dict) -> dict:
    """Delete the tenant's breaker transitions and per-minute scorecards older than the retention period."""
    days = params.get("older_than_days") or resilience_settings.RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted = history_purge(tenant=ctx.tenant, older_than=cutoff)
    ctx.progress(100, f"deleted {deleted['events']} transitions and {deleted['minutes']} scorecard minutes")
    return {**deleted, "older_than": cutoff.isoformat()}
