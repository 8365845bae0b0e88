"""Settings of the console app: `settings.BULWARK["CONSOLE"]`."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, positive_number


def _positive_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")


console_settings = AppSettings(
    "CONSOLE",
    defaults={
        # A socket is sent at most one message per this many seconds: what changed meanwhile is merged,
        # the newest value of each item winning (a slow client gets the latest state, not a queue).
        "MIN_SEND_INTERVAL_S": 1.0,
        # How often a process re-reads the fast figures (breakers, jobs) of a tenant somebody watches.
        "PULSE_INTERVAL_S": 1.0,
        # How often it re-reads the heavier ones (health, endpoints, charts, stats, audit, alerts).
        "METRICS_INTERVAL_S": 5.0,
        # Breaker board page size; the stream carries every breaker up to MAX_BREAKERS.
        "BREAKERS_PER_PAGE": 50,
        "MAX_BREAKERS": 500,
        # Rows of the top-endpoints, job-queue and recent-audit cards.
        "TOP_ENDPOINTS": 10,
        "RECENT_JOBS": 10,
        "RECENT_AUDIT_EVENTS": 10,
        # Minutes of history drawn by the charts.
        "CHART_MINUTES": 60,
    },
    validators={
        "MIN_SEND_INTERVAL_S": positive_number,
        "PULSE_INTERVAL_S": positive_number,
        "METRICS_INTERVAL_S": positive_number,
        "BREAKERS_PER_PAGE": _positive_int,
        "MAX_BREAKERS": _positive_int,
        "TOP_ENDPOINTS": _positive_int,
        "RECENT_JOBS": _positive_int,
        "RECENT_AUDIT_EVENTS": _positive_int,
        "CHART_MINUTES": _positive_int,
    },
)
