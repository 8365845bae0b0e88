"""The jobs app's settings: `BULWARK["JOBS"]`."""
from __future__ import annotations

from apps.core.conf import AppSettings, positive_number

jobs_settings = AppSettings(
    "JOBS",
    defaults={
        # A running attempt owns its run for this long; the worker's heartbeat renews it. An attempt whose
        # lease ran out (worker killed, host lost) is retried or failed by the `jobs.reap` sweep.
        "LEASE_S": 60,
        # How often the heartbeat thread of a running attempt renews its lease (well under LEASE_S).
        "HEARTBEAT_S": 15,
        # Retry delay of attempt n is uniform(0, min(RETRY_MAX_DELAY_S, RETRY_BASE_DELAY_S * 2**(n-1))).
        "RETRY_BASE_DELAY_S": 10,
        "RETRY_MAX_DELAY_S": 900,
        # A queued run whose delivery is older than this is enqueued again (a lost broker message).
        # The atomic claim makes a duplicate delivery harmless.
        "REDELIVER_AFTER_S": 900,
        # How often the sweep (orphans, due retries, lost deliveries) runs, in minutes (django-q2 resolution).
        "SWEEP_EVERY_MIN": 1,
        # Finished runs older than this are deleted by `jobs.retention`.
        "RETENTION_DAYS": 30,
    },
    validators={
        "LEASE_S": positive_number,
        "HEARTBEAT_S": positive_number,
        "RETRY_BASE_DELAY_S": positive_number,
        "RETRY_MAX_DELAY_S": positive_number,
        "REDELIVER_AFTER_S": positive_number,
        "SWEEP_EVERY_MIN": positive_number,
        "RETENTION_DAYS": positive_number,
    },
)
