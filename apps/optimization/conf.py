"""Settings of optimization: `settings.BULWARK["OPTIMIZATION"]`, validated once at start-up."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, positive_number


def _bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, got {value!r}")


def _rate(value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"must be a number between 0 and 1, got {value!r}")


def _optional_pct(value: Any) -> None:
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 100):
        raise ValueError(f"must be None (SATURATION_PCT) or a percentage in (0, 100], got {value!r}")


def _hosts(value: Any) -> None:
    if not isinstance(value, list | tuple) or not all(isinstance(h, str) and h for h in value):
        raise ValueError(f"must be a list of host names (or host:port), got {value!r}")


optimization_settings = AppSettings(
    "OPTIMIZATION",
    defaults={
        # Collect evidence at all (the request observer is not registered when off: zero cost).
        "ENABLED": True,
        # Share of requests sampled (SQL fingerprints, outgoing calls, stack samples, body shape)...
        "SAMPLE_RATE": 1.0,
        # ...but at most this many per (tenant, route, method) and minute in one process, so a hot route costs
        # the same as a quiet one: with the defaults, the first 60 requests of a route each minute are sampled.
        "MAX_SAMPLES_PER_ROUTE_MINUTE": 60,
        # Stack sampler period while a sampled request runs (the hottest function of CPU-bound requests).
        "STACK_SAMPLE_INTERVAL_MS": 10,
        # Response bodies up to this size are hashed and, when JSON, measured (list length).
        "BODY_INSPECT_MAX_BYTES": 2 * 1024 * 1024,
        # Samples kept this long (the `optimization.analyze` job purges older ones).
        "SAMPLE_RETENTION_HOURS": 24,
        # The default analysis window, and the least sampled requests a route needs before it is judged.
        "WINDOW_S": 15 * 60,
        "MIN_SAMPLES": 20,
        # Thresholds of the detectors (see README, "Optimization").
        "N_PLUS_ONE_MIN_REPEATS": 5,
        "REPEATED_QUERY_MIN_REPEATS": 3,
        "SLOW_QUERY_MS": 1.0,
        "LARGE_TABLE_ROWS": 10_000,
        "UNBOUNDED_MIN_ITEMS": 200,
        "CPU_HOT_MS": 30.0,
        # A stable GET response is worth caching when its median time is at least this.
        "HOT_READ_MIN_MS": 10.0,
        "DEPENDENCY_SLOW_MS": 300.0,
        "CACHE_POOR_HIT_RATIO": 0.5,
        "SATURATION_PCT": 90.0,
        # Per resource; None (the default) means SATURATION_PCT.
        "CPU_SATURATION_PCT": None,
        "MEMORY_SATURATION_PCT": None,
        "DB_CONNECTION_SATURATION_PCT": None,
        # A fix is judged better when its p95 falls at least this much, worse when it rises this much.
        "VERIFY_MIN_GAIN": 0.1,
        # Load tests may target only these hosts (host or host:port); empty: this server only (loopback).
        "LOADTEST_ALLOWED_HOSTS": [],
        # Bounds of one load test (all its steps together last at most LOADTEST_MAX_DURATION_S; the job
        # type's timeout is 540 s).
        "LOADTEST_MAX_CONCURRENCY": 200,
        "LOADTEST_MAX_DURATION_S": 480,
        "LOADTEST_MAX_RATE": 5_000,
    },
    validators={
        "ENABLED": _bool,
        "SAMPLE_RATE": _rate,
        "MAX_SAMPLES_PER_ROUTE_MINUTE": positive_number,
        "STACK_SAMPLE_INTERVAL_MS": positive_number,
        "BODY_INSPECT_MAX_BYTES": positive_number,
        "SAMPLE_RETENTION_HOURS": positive_number,
        "WINDOW_S": positive_number,
        "MIN_SAMPLES": positive_number,
        "N_PLUS_ONE_MIN_REPEATS": positive_number,
        "REPEATED_QUERY_MIN_REPEATS": positive_number,
        "SLOW_QUERY_MS": positive_number,
        "LARGE_TABLE_ROWS": positive_number,
        "UNBOUNDED_MIN_ITEMS": positive_number,
        "CPU_HOT_MS": positive_number,
        "HOT_READ_MIN_MS": positive_number,
        "DEPENDENCY_SLOW_MS": positive_number,
        "CACHE_POOR_HIT_RATIO": _rate,
        "SATURATION_PCT": positive_number,
        "CPU_SATURATION_PCT": _optional_pct,
        "MEMORY_SATURATION_PCT": _optional_pct,
        "DB_CONNECTION_SATURATION_PCT": _optional_pct,
        "VERIFY_MIN_GAIN": _rate,
        "LOADTEST_ALLOWED_HOSTS": _hosts,
        "LOADTEST_MAX_CONCURRENCY": positive_number,
        "LOADTEST_MAX_DURATION_S": positive_number,
        "LOADTEST_MAX_RATE": positive_number,
    },
)


def saturation_pct(resource: str) -> float:
    """The saturation level of `resource` (CPU, MEMORY, DB_CONNECTION): its own setting, else SATURATION_PCT."""
    own = getattr(optimization_settings, f"{resource}_SATURATION_PCT")
    return float(optimization_settings.SATURATION_PCT if own is None else own)
