"""Settings of the audit trail: `settings.BULWARK["AUDIT"]`."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings


def _positive_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")


audit_settings = AppSettings(
    "AUDIT",
    defaults={
        # Rows fetched per database round trip when exporting or verifying a chain.
        "EXPORT_CHUNK_SIZE": 2000,
        # Longest date range one API export may cover; larger exports go through the audit.export job.
        "EXPORT_MAX_DAYS": 366,
    },
    validators={"EXPORT_CHUNK_SIZE": _positive_int, "EXPORT_MAX_DAYS": _positive_int},
)
