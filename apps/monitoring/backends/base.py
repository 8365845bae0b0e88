"""Where request metrics go between a process's flush and the rollup: one interface, two stores.

A batch is {(tenant id or None, route, method, minute epoch): MinuteAgg}. `merge` adds it in one round
trip; `live` reads what is not yet rolled up; `fold` takes closed minutes out (atomically, so two rollups
never fold the same figures); `totals` are the cumulative counters `/metrics` reports. Every method raises
core's StoreUnavailable when the store cannot be reached. The backend is `BULWARK["MONITORING"]["BACKEND"]`
(None: Redis when the shared store is Redis, else the database), loaded by core's BackendLoader.
"""
from __future__ import annotations

from apps.monitoring.aggregate import MinuteAgg

Key = tuple  # (tenant_id | None, route, method, minute)


class MetricsStore:
    def merge(self, batch: dict[Key, MinuteAgg]) -> None:
        raise NotImplementedError

    def live(self, *, tenant_id: int | None, start_minute: int, end_minute: int) -> dict[Key, MinuteAgg]:
        raise NotImplementedError

    def fold(self, *, tenant_id: int | None, before_minute: int) -> dict[Key, MinuteAgg]:
        raise NotImplementedError

    def totals(self) -> dict[tuple, MinuteAgg]:
        """{(tenant_id, route, method): MinuteAgg} since the store began (counters never go down)."""
        raise NotImplementedError
