"""Job types of the audit trail: exports of large ranges to a file, and retention."""
from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from apps.audit.export import FORMATS
from apps.audit.selectors import events_in_range
from apps.audit.services import export_write, retention_apply
from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import job_type
from apps.tenancy.roles import Role

EXPORT_DIR = "exports"
PROGRESS_EVERY_ROWS = 1000


class ExportParams(StrictSerializer):
    format = serializers.ChoiceField(choices=FORMATS, default="csv")
    start = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                      help_text="Events at or after this instant; empty: from the first.")
    end = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                    help_text="Events before this instant; empty: up to now.")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("start") and attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        return attrs


class ProgressWriter:
    """A text file that reports export progress every PROGRESS_EVERY_ROWS rows (and so can be cancelled)."""

    def __init__(self, out, ctx, total_rows: int) -> None:
        self.out, self.ctx, self.total_rows, self.rows = out, ctx, max(total_rows, 1), 0

    def write(self, text: str) -> int:
        self.rows += 1
        if self.rows % PROGRESS_EVERY_ROWS == 0:
            self.ctx.progress(min(99, 100 * self.rows // self.total_rows), f"{self.rows} rows")
        return self.out.write(text)


@job_type("audit.export", params=ExportParams, timeout_s=600, max_attempts=2)
def export(ctx, params: dict) -> dict:
    """Write the tenant's audit events of a range to a CSV or JSON-lines file under MEDIA_ROOT/exports/."""
    fmt, start, end = params["format"], params["start"], params["end"] or timezone.now()
    directory = Path(settings.MEDIA_ROOT) / EXPORT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    name = f"audit-{ctx.tenant.slug}-run{ctx.run.pk}.{fmt}"
    total_rows = events_in_range(tenant=ctx.tenant, start=start, end=end).count()
    # Written to a temporary name and renamed when complete: a download never sees half a file, and a
    # failed or cancelled attempt leaves nothing behind.
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=f".{fmt}")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            rows = export_write(tenant=ctx.tenant, start=start, end=end, fmt=fmt,
                                out=ProgressWriter(out, ctx, total_rows))
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"file": f"{EXPORT_DIR}/{name}", "rows": rows, "format": fmt,
            "start": start.isoformat() if start else None, "end": end.isoformat()}


class RetentionParams(StrictSerializer):
    older_than_days = serializers.IntegerField(min_value=1, max_value=36500,
                                               help_text="Delete the tenant's audit events older than this.")


@job_type("audit.retention", params=RetentionParams, timeout_s=600, max_attempts=3,
          submit_role=Role.ADMIN, durable_outcome=False)
def retention(ctx, params: dict) -> dict:
    """Delete the tenant's audit events older than the given age (leaving an anchor so the chain verifies)."""
    older_than = timezone.now() - timedelta(days=params["older_than_days"])
    deleted = retention_apply(tenant=ctx.tenant, older_than=older_than)
    return {"deleted": deleted, "older_than": older_than.isoformat()}
