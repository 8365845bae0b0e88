"""Settings of monitoring: `settings.BULWARK["MONITORING"]`."""
from __future__ import annotations

import os
from typing import Any

from apps.core.conf import AppSettings, positive_number


def _bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, got {value!r}")


def _cidrs(value: Any) -> None:
    import ipaddress

    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of addresses or CIDRs, got {value!r}")
    for item in value:
        ipaddress.ip_network(item, strict=False)


def _optional_str(value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"must be a string or None, got {value!r}")


monitoring_settings = AppSettings(
    "MONITORING",
    defaults={
        # Dotted path of the metrics store (a backends.base.MetricsStore); None: Redis when the shared store
        # is Redis, else the database (the embedded default).
        "BACKEND": None,
        # Record request metrics at all (the middleware passes requests through untouched when off).
        "ENABLED": True,
        # Send a W3C Server-Timing header (db, app, total) beside X-Response-Time.
        "SERVER_TIMING": True,
        # Bearer token that /metrics accepts (env BULWARK_METRICS_TOKEN); None or "": token access off.
        "METRICS_TOKEN": os.environ.get("BULWARK_METRICS_TOKEN") or None,
        # Addresses or CIDRs allowed to read /metrics without a token. Empty: none (loopback is not implied).
        "METRICS_ALLOW_IPS": [],
        # A closed minute is folded into PostgreSQL once it ended this long ago (a late flush still lands).
        "ROLLUP_GRACE_S": 15,
        # Minute rows older than this are downsampled into hour rows.
        "MINUTE_RETENTION_HOURS": 48,
        # Hour rows older than this are deleted.
        "HOUR_RETENTION_DAYS": 90,
        # Live minutes in Redis expire after this long if no rollup folds them (rollup jobs not running).
        "LIVE_TTL_S": 6 * 3600,
        # At most this many records in one ingest batch (413 beyond), and histograms likewise.
        "INGEST_MAX_RECORDS": 10_000,
        "INGEST_MAX_HISTOGRAMS": 1_000,
        # Largest ingest body in bytes (413 beyond); other endpoints keep DATA_UPLOAD_MAX_MEMORY_SIZE. A full
        # batch of records with the longest routes is about 4 MB.
        "INGEST_MAX_BYTES": 16 * 1024 * 1024,
        # How long an ingest batch id is remembered (a repeat within it answers duplicate).
        "INGEST_DEDUP_TTL_S": 7 * 86400,
        # Distinct (route, method) keys a tenant may have per minute in one process; more fold into <other>.
        "MAX_ROUTES_PER_TENANT": 500,
        # One system sample per host this often (`monitoring.sample`, offered by every server process).
        "SAMPLE_EVERY_S": 10,
    },
    validators={
        "BACKEND": _optional_str,
        "ENABLED": _bool,
        "SERVER_TIMING": _bool,
        "METRICS_TOKEN": _optional_str,
        "METRICS_ALLOW_IPS": _cidrs,
        "ROLLUP_GRACE_S": positive_number,
        "MINUTE_RETENTION_HOURS": positive_number,
        "HOUR_RETENTION_DAYS": positive_number,
        "LIVE_TTL_S": positive_number,
        "INGEST_MAX_RECORDS": positive_number,
        "INGEST_MAX_HISTOGRAMS": positive_number,
        "INGEST_MAX_BYTES": positive_number,
        "INGEST_DEDUP_TTL_S": positive_number,
        "MAX_ROUTES_PER_TENANT": positive_number,
        "SAMPLE_EVERY_S": positive_number,
    },
)
