"""Settings of the console app: `settings.BULWARK["CONSOLE"]`."""
from __future__ import annotations

from apps.core.conf import AppSettings, positive_int, positive_number

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
        # How often an open socket's token or session and membership are checked again (one check per
        # principal and tenant in a process, however many sockets it has open).
        "PRINCIPAL_RECHECK_S": 2.0,
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
        "PRINCIPAL_RECHECK_S": positive_number,
        "BREAKERS_PER_PAGE": positive_int,
        "MAX_BREAKERS": positive_int,
        "TOP_ENDPOINTS": positive_int,
        "RECENT_JOBS": positive_int,
        "RECENT_AUDIT_EVENTS": positive_int,
        "CHART_MINUTES": positive_int,
    },
)
