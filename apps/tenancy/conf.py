"""Settings of tenancy: `settings.BULWARK["TENANCY"]`."""
from __future__ import annotations

from apps.core.conf import AppSettings, positive_number

tenancy_settings = AppSettings(
    "TENANCY",
    defaults={
        # How long an invitation to join a tenant can be accepted.
        "INVITATION_TTL_S": 7 * 24 * 3600,
    },
    validators={"INVITATION_TTL_S": positive_number},
)
