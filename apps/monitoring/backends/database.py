"""The embedded default's store: each flush adds straight to the minute rows (one process, no Redis)."""
from __future__ import annotations

import threading

from django.db import DatabaseError

from apps.core.store import StoreUnavailable
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore


class DatabaseMetricsStore(MetricsStore):
    def __init__(self) -> None:
        self._totals: dict[tuple, MinuteAgg] = {}
        self._lock = threading.Lock()

    def merge(self, batch: dict[Key, MinuteAgg]) -> None:
        from apps.monitoring.services import rollup_add

        try:
            rollup_add(batch=batch)
        except DatabaseError as exc:
            raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        with self._lock:
            for (tenant_id, route, method, _minute), agg in batch.items():
                self._totals.setdefault((tenant_id, route, method), MinuteAgg()).merge(agg)

    def live(self, *, tenant_id, start_minute, end_minute) -> dict[Key, MinuteAgg]:
        return {}

    def fold(self, *, tenant_id, before_minute) -> dict[Key, MinuteAgg]:
        return {}

    def totals(self) -> dict[tuple, MinuteAgg]:
        with self._lock:
            return {key: MinuteAgg().merge(agg) for key, agg in self._totals.items()}
