"""Request metrics in memory: one dict update per request, drained to the store by the core stats pipeline.

Keys are (tenant id, `ANONYMOUS` or None, route pattern, method, minute epoch); a process keeps at most
`MAX_ROUTES_PER_TENANT` routes per tenant and minute (more fold into `<other>`), and unknown methods are
`OTHER`, so a scan of random URLs or verbs cannot grow memory, Redis or the database. `ANONYMOUS` becomes
the core `ANONYMOUS_TENANT`'s id (or None) when the batch is taken, off the request path.

The store is reached through core's StoreGuard: while it is down, flushes keep their batch in memory and
skip the store until the retry interval has passed, and health reports `monitoring:store` degraded.
"""
from __future__ import annotations

import threading

from apps.core import stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.store import BackendLoader, StoreGuard, StoreUnavailable
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import OTHER_ROUTE

SINK_NAME = "monitoring.requests"
HEALTH_COMPONENT = "monitoring:store"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# The tenant key of an anonymous request until the batch is taken (see module docstring).
ANONYMOUS = "anonymous"

store_loader: BackendLoader[MetricsStore] = BackendLoader(
    monitoring_settings,
    redis_default="apps.monitoring.backends.redis.RedisMetricsStore",
    memory_default="apps.monitoring.backends.database.DatabaseMetricsStore",
)


def anonymous_tenant_id() -> int | None:
    from apps.core.requests import anonymous_tenant
    from apps.tenancy.selectors import active_tenant_id

    slug = anonymous_tenant()
    return active_tenant_id(slug=slug) if slug else None


class RequestSink(stats.BufferedSink):
    """Collects MinuteAggs under a lock; `flush(now)` hands the batch to the store in one call."""

    def __init__(self, store: MetricsStore | None = None, *, max_routes: int | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._pending: dict[Key, MinuteAgg] = {}
        self._routes: dict[tuple, set] = {}
        self._lock = threading.Lock()
        self.max_routes = max_routes
        self.clock = clock
        self.guard = StoreGuard(HEALTH_COMPONENT, clock=clock, description="metrics store")

    @property
    def store(self) -> MetricsStore:
        return self._store if self._store is not None else store_loader.get()

    def record(self, tenant_id: int | str | None, route: str, method: str, status: int, duration_ms: float,
               db_ms: float = 0.0, queries: int = 0, size: int = 0, *, now: float | None = None) -> None:
        if now is None:
            now = self.clock.time()
        if method not in METHODS:
            method = "OTHER"
        status_class = status // 100
        if not 1 <= status_class <= 5:
            status_class = 5
        key = (tenant_id, route, method, int(now // 60))
        with self._lock:
            agg = self._pending.get(key)
            if agg is None:
                agg = self._new(key)
            agg.add(status_class, duration_ms, db_ms, queries, size)

    def _new(self, key: Key) -> MinuteAgg:
        """The aggregate of a key not seen yet this flush; beyond the route cap, the tenant's `<other>`."""
        tenant_id, route, method, minute = key
        seen = self._routes.setdefault((tenant_id, minute), set())
        if route not in seen and len(seen) >= self._max_routes():
            route = OTHER_ROUTE
            key = (tenant_id, route, method, minute)
        seen.add(route)
        agg = self._pending.get(key)
        if agg is None:
            agg = self._pending[key] = MinuteAgg()
        return agg

    def _max_routes(self) -> int:
        return self.max_routes or int(monitoring_settings.MAX_ROUTES_PER_TENANT)

    def restore(self, batch: dict[Key, MinuteAgg]) -> None:
        with self._lock:
            _merge_into(self._pending, batch)

    def take(self) -> dict[Key, MinuteAgg]:
        with self._lock:
            batch, self._pending = self._pending, {}
            self._routes = {}
        if any(key[0] == ANONYMOUS for key in batch):
            batch = _resolve_anonymous(batch, anonymous_tenant_id())
        return batch

    def write(self, batch: dict[Key, MinuteAgg], now: float) -> None:
        self.store.merge(batch)

    def flush(self, now: float) -> None:
        """One store call per flush; with the store down the batch stays here (merged with what follows)."""
        if not self.guard.available():
            return
        batch = self.take()
        if not batch:
            return
        try:
            self.write(batch, now)
        except StoreUnavailable as exc:
            self.restore(batch)
            self.guard.failed(exc)
            return
        except Exception:
            self.restore(batch)
            raise
        self.guard.succeeded()

    def read(self, operation, fallback):
        """A read of the store through this sink's guard (selectors, /metrics): `fallback()` while it is down."""
        return self.guard.run(operation, fallback)


def _merge_into(target: dict[Key, MinuteAgg], batch: dict[Key, MinuteAgg]) -> None:
    for key, agg in batch.items():
        current = target.get(key)
        if current is None:
            target[key] = agg
        else:
            current.merge(agg)


def _resolve_anonymous(batch: dict[Key, MinuteAgg], tenant_id: int | None) -> dict[Key, MinuteAgg]:
    resolved: dict[Key, MinuteAgg] = {}
    for key, agg in batch.items():
        if key[0] == ANONYMOUS:
            key = (tenant_id, *key[1:])
        _merge_into(resolved, {key: agg})
    return resolved


sink = RequestSink()


def install() -> None:
    stats.register(SINK_NAME, sink, start=False)


def record(tenant_id, route, method, status, duration_ms, db_ms=0.0, queries=0, size=0, now=None) -> None:
    sink.record(tenant_id, route, method, status, duration_ms, db_ms, queries, size, now=now)
