"""Per-policy, per-minute hit statistics, counted in memory and flushed in batches (never per request)."""
from __future__ import annotations

import time

from apps.caching.conf import caching_settings
from apps.core.batching import BatchedCounters

_counters: BatchedCounters | None = None


def _flush(batch) -> None:
    from apps.caching.services import stats_flush

    stats_flush(batch=batch)


def counters() -> BatchedCounters:
    global _counters
    if _counters is None:
        _counters = BatchedCounters("caching", _flush, interval_s=caching_settings.STATS_FLUSH_INTERVAL_S)
    return _counters


def record(policy, **fields: int) -> None:
    minute = int(time.time() // 60 * 60)
    batch = counters()
    for name, n in fields.items():
        if n:
            batch.add((policy.tenant_id, policy.id, minute), name, n)
