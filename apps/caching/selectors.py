"""Reads of the caching app: per-minute statistics of a policy and the store's memory used."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.caching import keys, stats
from apps.caching.backends import get_backend
from apps.caching.conf import caching_settings
from apps.caching.models import STAT_FIELDS, CachePolicy, CacheStatMinute
from apps.core.store import StoreUnavailable


def cache_memory(*, tenant_id: int) -> dict[str, Any]:
    """Bytes and keys of this tenant's cache in the store (entries, locks and tag versions)."""
    try:
        return get_backend().memory_usage(pattern=keys.tenant_pattern(tenant_id),
                                          max_keys=caching_settings.MEMORY_REPORT_MAX_KEYS)
    except StoreUnavailable as exc:
        return {"backend": "unavailable", "bytes": None, "keys": None, "complete": False, "error": str(exc)[:200]}


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def policy_stats(*, policy: CachePolicy, minutes: int = 60) -> dict[str, Any]:
    """Totals and per-minute rows over the last `minutes`, including this process's unflushed counts."""
    stats.flush()
    since = timezone.now() - timedelta(minutes=minutes)
    rows = list(CacheStatMinute.objects.for_tenant(policy.tenant_id).filter(policy=policy, minute__gte=since)
                .order_by("minute").values("minute", *STAT_FIELDS))
    # At most one row per minute (a week at most): summed here rather than in a second query.
    totals: dict[str, Any] = {name: sum(row[name] for row in rows) for name in STAT_FIELDS}
    served = totals["hits"] + totals["stale"]
    totals["hit_ratio"] = _ratio(served, served + totals["misses"])
    for row in rows:
        row_served = row["hits"] + row["stale"]
        row["hit_ratio"] = _ratio(row_served, row_served + row["misses"])
    return {"policy": policy.pk, "minutes": minutes, "totals": totals, "per_minute": rows,
            "store_memory": cache_memory(tenant_id=policy.tenant_id)}
