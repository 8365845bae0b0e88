"""Request metrics in memory: one dict update per request, drained to the store by the core stats pipeline.

Keys are (tenant id or None, route pattern, method, minute epoch); a process keeps at most
`MAX_ROUTES_PER_TENANT` routes per tenant and minute (more fold into `<other>`), and unknown methods are
`OTHER`, so a scan of random URLs or verbs cannot grow memory, Redis or the database.
"""
from __future__ import annotations

import threading
import time

from apps.core import stats
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import OTHER_ROUTE

SINK_NAME = "monitoring.requests"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def default_store() -> MetricsStore:
    from apps.core.store import redis_client

    if redis_client() is not None:
        from apps.monitoring.backends.redis import RedisMetricsStore

        return RedisMetricsStore()
    from apps.monitoring.backends.database import DatabaseMetricsStore

    return DatabaseMetricsStore()


class RequestSink(stats.BufferedSink):
    """Collects MinuteAggs under a lock; `flush(now)` hands the batch to the store in one call."""

    def __init__(self, store: MetricsStore | None = None, *, max_routes: int | None = None) -> None:
        self._store = store
        self._pending: dict[Key, MinuteAgg] = {}
        self._routes: dict[tuple, set] = {}
        self._lock = threading.Lock()
        self.max_routes = max_routes

    @property
    def store(self) -> MetricsStore:
        if self._store is None:
            self._store = default_store()
        return self._store

    def record(self, tenant_id: int | None, route: str, method: str, status: int, duration_ms: float,
               db_ms: float = 0.0, queries: int = 0, size: int = 0, *, now: float) -> None:
        minute = int(now // 60)
        if method not in METHODS:
            method = "OTHER"
        status_class = status // 100
        if not 1 <= status_class <= 5:
            status_class = 5
        key = (tenant_id, route, method, minute)
        with self._lock:
            agg = self._pending.get(key)
            if agg is None:
                seen = self._routes.setdefault((tenant_id, minute), set())
                if route not in seen and len(seen) >= self._max_routes():
                    route = OTHER_ROUTE
                    key = (tenant_id, route, method, minute)
                    agg = self._pending.get(key)
                seen.add(route)
                if agg is None:
                    agg = self._pending[key] = MinuteAgg()
            agg.add(status_class, duration_ms, db_ms, queries, size)

    def _max_routes(self) -> int:
        return self.max_routes or int(monitoring_settings.MAX_ROUTES_PER_TENANT)

    def restore(self, batch: dict[Key, MinuteAgg]) -> None:
        with self._lock:
            for key, agg in batch.items():
                current = self._pending.get(key)
                if current is None:
                    self._pending[key] = agg
                else:
                    current.merge(agg)

    def take(self) -> dict[Key, MinuteAgg]:
        with self._lock:
            batch, self._pending = self._pending, {}
            self._routes = {}
        return batch

    def write(self, batch: dict[Key, MinuteAgg], now: float) -> None:
        self.store.merge(batch)


sink = RequestSink()


def install() -> None:
    stats.register(SINK_NAME, sink, start=False)


def record(tenant_id, route, method, status, duration_ms, db_ms=0.0, queries=0, size=0, now=None) -> None:
    sink.record(tenant_id, route, method, status, duration_ms, db_ms, queries, size,
                now=time.time() if now is None else now)
