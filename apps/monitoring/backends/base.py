"""Where request metrics go between a process's flush and the rollup: one interface, two stores.

A batch is {(tenant id or None, route, method, minute epoch): MinuteAgg}. `merge` adds it in one round
trip; `live` reads what is not yet rolled up; `fold` takes closed minutes out (atomically, so two rollups
never fold the same figures); `totals` are the cumulative counters `/metrics` reports; `claim` and
`release` are set-once markers (ingest batch ids, per-slot work). Every method raises core's
StoreUnavailable when the store cannot be reached, and only then (callers reach the store through the
recorder's StoreGuard, which counts that as an outage). The backend is `BULWARK["MONITORING"]["BACKEND"]`
(None: Redis when the shared store is Redis, else the database), loaded by core's BackendLoader.
"""
from __future__ import annotations

import math

from apps.monitoring.aggregate import MinuteAgg

Key = tuple  # (tenant_id | None, route, method, minute)


def checked(batch: dict[Key, MinuteAgg]) -> dict[Key, MinuteAgg]:
    """The batch's keys that hold requests; ValueError naming the key when a figure is not finite (NaN or
    infinity: Redis refuses it midway, the database would keep it in every sum), raised before anything is
    written, so a merge lands whole or not at all."""
    kept = {}
    for key, agg in batch.items():
        if not agg.count:
            continue
        figures = [agg.duration_ms_min, agg.duration_ms_max, *agg.to_fields().values()]
        if not all(math.isfinite(value) for value in figures):
            raise ValueError(f"monitoring merge: a figure of {key!r} is not a finite number: {figures!r}")
        kept[key] = agg
    return kept


class MetricsStore:
    def merge(self, batch: dict[Key, MinuteAgg]) -> None:
        """Add the batch, whole or not at all (ValueError, before any write, for a figure that is not finite)."""
        raise NotImplementedError

    def live(self, *, tenant_id: int | None, start_minute: int, end_minute: int) -> dict[Key, MinuteAgg]:
        raise NotImplementedError

    def fold(self, *, tenant_id: int | None, before_minute: int) -> dict[Key, MinuteAgg]:
        raise NotImplementedError

    def totals(self) -> dict[tuple, MinuteAgg]:
        """{(tenant_id, route, method): MinuteAgg} since the store began (counters never go down)."""
        raise NotImplementedError

    def claim(self, key: str, ttl_s: int) -> bool:
        """True for the first caller of `key` (across processes, and hosts on a shared store) within `ttl_s`."""
        raise NotImplementedError

    def release(self, key: str) -> None:
        """Forget a claim, so the next `claim` of the key wins again."""
        raise NotImplementedError
