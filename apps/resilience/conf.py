"""Settings of the resilience app: `settings.BULWARK["RESILIENCE"]`."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, optional_positive_number, positive_number


def _optional_dotted_path(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or "." not in value):
        raise ValueError(f"must be None (automatic) or a dotted path, got {value!r}")


resilience_settings = AppSettings(
    "RESILIENCE",
    defaults={
        # Dotted path of the breaker backend; None picks Redis when the shared store is Redis, else memory.
        "BACKEND": None,
        # How often each process merges its counted outcomes into the shared window.
        "FLUSH_INTERVAL_S": 0.1,
        # How often a process re-reads a breaker's shared state when it has nothing to merge; this bounds
        # how long another process's transition takes to reach it.
        "SYNC_INTERVAL_S": 0.5,
        # A half-open probe ticket not reported within this time is given back, so a crashed prober
        # cannot keep a breaker half-open for ever.
        "PROBE_TIMEOUT_S": 30.0,
        # Deprecated (read while set): BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"], the one stats flusher's interval,
        # which also writes transitions and the per-minute dependency scorecard.
        "SCORECARD_FLUSH_INTERVAL_S": None,
        # Lease of a cluster-wide bulkhead slot: a holder that dies frees its slot after this long.
        "BULKHEAD_LEASE_S": 60.0,
        # Breaker transitions and per-minute scorecards older than this are deleted by `resilience.retention`.
        "RETENTION_DAYS": 30,
    },
    validators={
        "BACKEND": _optional_dotted_path,
        "FLUSH_INTERVAL_S": positive_number,
        "SYNC_INTERVAL_S": positive_number,
        "PROBE_TIMEOUT_S": positive_number,
        "SCORECARD_FLUSH_INTERVAL_S": optional_positive_number,
        "BULKHEAD_LEASE_S": positive_number,
        "RETENTION_DAYS": positive_number,
    },
    deprecated={"SCORECARD_FLUSH_INTERVAL_S": 'BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"]'},
)
