"""The jobs app's settings: `BULWARK["JOBS"]`."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, positive_number


def non_negative_number(value: Any) -> None:
    if not isinstance(value, int | float) or value < 0:
        raise ValueError(f"must be a number of at least 0, got {value!r}")


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
        # Group commit in workers: outcomes are written together, after at most this many milliseconds or
        # OUTCOME_BATCH_MAX runs, in one statement and one commit. A worker killed before that leaves its runs
        # running; the sweep runs them again (at-least-once). 0 writes each outcome at once.
        "OUTCOME_BATCH_MS": 5,
        "OUTCOME_BATCH_MAX": 32,
        # A worker checks its database connection (Django's CONN_HEALTH_CHECKS) at most this often, not per task.
        "CONN_CHECK_EVERY_S": 5,
        # Most runs in one `job_submit_many` (and one batch in the API).
        "SUBMIT_MANY_MAX": 500,
        # A hard stop ends the worker's task this long after it was requested (the job may stop by itself first).
        "TERMINATE_GRACE_S": 10,
    },
    validators={
        "LEASE_S": positive_number,
        "HEARTBEAT_S": positive_number,
        "RETRY_BASE_DELAY_S": positive_number,
        "RETRY_MAX_DELAY_S": positive_number,
        "REDELIVER_AFTER_S": positive_number,
        "SWEEP_EVERY_MIN": positive_number,
        "RETENTION_DAYS": positive_number,
        "OUTCOME_BATCH_MS": non_negative_number,
        "OUTCOME_BATCH_MAX": positive_number,
        "CONN_CHECK_EVERY_S": non_negative_number,
        "SUBMIT_MANY_MAX": positive_number,
        "TERMINATE_GRACE_S": non_negative_number,
    },
)
