"""Per-policy, per-minute hit statistics, counted in memory on the hot path and flushed in batches off it."""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.caching.conf import caching_settings
from apps.caching.models import STAT_FIELDS, CachePolicy, CacheStatMinute
from apps.core.batching import BatchedCounters
from apps.core.clock import SYSTEM_CLOCK, Clock

_counters: BatchedCounters | None = None


def write(batch: dict[Hashable, Counter]) -> None:
    """Add a batch of {(tenant id, policy id, minute epoch): counts} to the per-minute rows (any process)."""
    known = set(CachePolicy.objects.filter(pk__in={key[1] for key in batch}).values_list("pk", flat=True))
    for (tenant_id, policy_id, minute_epoch), counts in batch.items():
        if policy_id not in known:
            continue  # deleted since: its counts have nowhere to go
        minute = datetime.fromtimestamp(minute_epoch, tz=UTC)
        increments = {name: F(name) + counts.get(name, 0) for name in STAT_FIELDS if counts.get(name)}
        if not increments:
            continue
        rows = CacheStatMinute.objects.filter(policy_id=policy_id, minute=minute)
        if rows.update(**increments):
            continue
        try:
            with transaction.atomic():
                CacheStatMinute.objects.create(tenant_id=tenant_id, policy_id=policy_id, minute=minute,
                                               **{name: counts.get(name, 0) for name in STAT_FIELDS})
        except IntegrityError:  # another process created the row first
            rows.update(**increments)


def counters() -> BatchedCounters:
    global _counters
    if _counters is None:
        _counters = BatchedCounters("caching", write, interval_s=caching_settings.STATS_FLUSH_INTERVAL_S)
    return _counters


def record(policy, *, clock: Clock = SYSTEM_CLOCK, **fields: int) -> None:
    minute = int(clock.time() // 60 * 60)
    batch = counters()
    for name, n in fields.items():
        if n:
            batch.add((policy.tenant_id, policy.id, minute), name, n)
