"""Per-policy, per-minute hit statistics, counted in memory on the hot path and flushed in batches off it by
core's one stats pipeline (sink `caching.hits`)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.caching.conf import caching_settings
from apps.caching.models import STAT_FIELDS, CachePolicy, CacheStatMinute
from apps.core import stats as core_stats
from apps.core.clock import SYSTEM_CLOCK, Clock


def write(batch: dict[Hashable, Counter], now: float | None = None) -> None:
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


SINK_NAME = "caching.hits"
sink = core_stats.register(SINK_NAME, core_stats.CounterSink(write), start=False,
                           interval_alias=(caching_settings, "STATS_FLUSH_INTERVAL_S"))
_pipeline = core_stats.pipeline


def record(policy, *, clock: Clock = SYSTEM_CLOCK, **fields: int) -> None:
    if not _pipeline.running:  # the first count of this process starts its flusher
        _pipeline.ensure_started()
    key = (policy.tenant_id, policy.id, int(clock.time() // 60 * 60))
    for name, n in fields.items():
        if n:
            sink.add(key, name, n)


def flush(*, clock: Clock = SYSTEM_CLOCK) -> None:
    """Write what this process counted so far now (the stats page and API, tests)."""
    sink.flush(clock.time())
