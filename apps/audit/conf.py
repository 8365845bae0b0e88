"""Settings of the audit trail: `settings.BULWARK["AUDIT"]`."""
from __future__ import annotations

from apps.core.conf import AppSettings, positive_int

audit_settings = AppSettings(
    "AUDIT",
    defaults={
        # Rows fetched per database round trip when exporting or verifying a chain.
        "EXPORT_CHUNK_SIZE": 2000,
        # Longest date range one API export may cover; larger exports go through the audit.export job.
        "EXPORT_MAX_DAYS": 366,
    },
    validators={"EXPORT_CHUNK_SIZE": positive_int, "EXPORT_MAX_DAYS": positive_int},
)
