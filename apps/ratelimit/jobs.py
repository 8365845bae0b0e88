"""Job types of the rate-limit app: retention of the per-minute stats."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.jobs.registry import job_type
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.services import stats_purge
from apps.tenancy.roles import Role


class StatsRetentionParams(StrictSerializer):
    older_than_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False,
        help_text="Delete stats of minutes older than this; default BULWARK['RATELIMIT']['STATS_RETENTION_DAYS'].",
    )


@job_type("ratelimit.stats_retention", params=StatsRetentionParams, timeout_s=600, max_attempts=3,
          cron="27 3 * * *", submit_role=Role.ADMIN)
def stats_retention(ctx, params: dict) -> dict:
    """Delete the tenant's per-minute rate-limit stats older than the retention period."""
    days = params.get("older_than_days") or ratelimit_settings.STATS_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted = stats_purge(tenant=ctx.tenant, older_than=cutoff)
    return {"deleted": deleted, "older_than": cutoff.isoformat()}
