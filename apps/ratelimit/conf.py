"""Settings of the rate-limit app: `settings.BULWARK["RATELIMIT"]`."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, optional_positive_number, optional_slug, positive_number


def _route_names(value: Any) -> None:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of URL names, got {value!r}")


ratelimit_settings = AppSettings(
    "RATELIMIT",
    defaults={
        # Dotted path of the backend; None picks Redis when the shared store is Redis, else memory.
        "BACKEND": None,
        # Deprecated (read while set): BULWARK["CORE"]["ANONYMOUS_TENANT"] is the one setting.
        "ANONYMOUS_TENANT": None,
        # URL names never rate limited (probes must answer while a client is being throttled).
        "EXEMPT_ROUTES": ["healthz", "readyz"],
        # Decision endpoints other services call on their hot path: match-any policies skip them; only a
        # policy that names them (route or path) limits them.
        "DECISION_ROUTES": ["v1:ratelimit-check", "v1:breaker-acquire", "v1:breaker-report", "v1:breaker-report-batch"],
        # Deprecated (read while set): BULWARK["CORE"]["STORE_RETRY_INTERVAL_S"] / ["OUTAGE_LOG_INTERVAL_S"].
        "STORE_RETRY_INTERVAL_S": None,
        "OUTAGE_LOG_INTERVAL_S": None,
        # Retry-After sent when a fail-closed policy refuses because the store is unreachable.
        "FAIL_CLOSED_RETRY_AFTER_S": 5,
        # Deprecated (read while set): BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"], the one stats flusher's interval.
        "STATS_FLUSH_INTERVAL_S": None,
        # Per-minute stats older than this are deleted by the daily `ratelimit.stats_retention` job.
        "STATS_RETENTION_DAYS": 30,
        # Largest rate of a moving-window policy: its log keeps one entry per admitted unit and key.
        "MOVING_WINDOW_MAX_RATE": 1000,
    },
    validators={
        "ANONYMOUS_TENANT": optional_slug,
        "EXEMPT_ROUTES": _route_names,
        "DECISION_ROUTES": _route_names,
        "STORE_RETRY_INTERVAL_S": optional_positive_number,
        "OUTAGE_LOG_INTERVAL_S": optional_positive_number,
        "FAIL_CLOSED_RETRY_AFTER_S": positive_number,
        "STATS_FLUSH_INTERVAL_S": optional_positive_number,
        "STATS_RETENTION_DAYS": positive_number,
        "MOVING_WINDOW_MAX_RATE": positive_number,
    },
    deprecated={
        "ANONYMOUS_TENANT": 'BULWARK["CORE"]["ANONYMOUS_TENANT"]',
        "STORE_RETRY_INTERVAL_S": 'BULWARK["CORE"]["STORE_RETRY_INTERVAL_S"]',
        "OUTAGE_LOG_INTERVAL_S": 'BULWARK["CORE"]["OUTAGE_LOG_INTERVAL_S"]',
        "STATS_FLUSH_INTERVAL_S": 'BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"]',
    },
)
