"""The jobs app's own job types."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import job_type
from apps.jobs.conf import jobs_settings
from apps.jobs.services import runs_purge
from apps.tenancy.roles import Role


class RetentionParams(StrictSerializer):
    older_than_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False,
        help_text="Delete finished runs older than this; default BULWARK['JOBS']['RETENTION_DAYS'].",
    )


@job_type("jobs.retention", params=RetentionParams, timeout_s=600, max_attempts=3, cron="17 3 * * *",
          submit_role=Role.ADMIN, durable_outcome=False)
def retention(ctx, params: dict) -> dict:
    """Delete the tenant's finished job runs older than the retention period."""
    days = params.get("older_than_days") or jobs_settings.RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted = runs_purge(tenant=ctx.tenant, older_than=cutoff)
    ctx.progress(100, f"deleted {deleted} runs")
    return {"deleted": deleted, "older_than": cutoff.isoformat()}


@job_type("jobs.ping", timeout_s=10, max_attempts=1, durable_outcome=False)
def ping(ctx, params: dict) -> dict:
    """Does nothing: an end-to-end probe of the broker and the workers (and the throughput benchmark's job)."""
    return {"pong": True}
