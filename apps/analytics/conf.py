"""Settings of analytics: `settings.BULWARK["ANALYTICS"]`, validated once."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, positive_number


def _positive_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")


def _unit_interval(value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(f"must be a number between 0 and 1 (exclusive), got {value!r}")


analytics_settings = AppSettings(
    "ANALYTICS",
    defaults={
        # Forecasts: the step of the series they are made on, how much history they read, their horizon.
        "FORECAST_STEP_S": 3600,
        "FORECAST_HISTORY_DAYS": 112,
        "FORECAST_HORIZON": 168,
        # Detection: the step of the series it reads, how much history, and the final-score level that opens
        # an `Anomaly` (the score already carries repeat suppression: one alarm per event).
        "DETECT_STEP_S": 300,
        "DETECT_HISTORY_HOURS": 7 * 24,
        "ANOMALY_THRESHOLD": 0.45,
        # Ingest: points per request, and points kept per ingested series (older ones are dropped).
        "INGEST_MAX_POINTS": 5000,
        "INGEST_MAX_SERIES": 200,
        "INGEST_RETENTION_DAYS": 180,
    },
    validators={
        "FORECAST_STEP_S": _positive_int,
        "FORECAST_HISTORY_DAYS": _positive_int,
        "FORECAST_HORIZON": _positive_int,
        "DETECT_STEP_S": _positive_int,
        "DETECT_HISTORY_HOURS": _positive_int,
        "ANOMALY_THRESHOLD": _unit_interval,
        "INGEST_MAX_POINTS": _positive_int,
        "INGEST_MAX_SERIES": _positive_int,
        "INGEST_RETENTION_DAYS": positive_number,
    },
)
