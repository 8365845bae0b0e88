"""The embedded default's store: each flush adds straight to the minute rows (one process, no Redis); claims
live in the store cache (core's STORE_CACHE_ALIAS)."""
from __future__ import annotations

import threading

from django.core.cache import caches
from django.db import InterfaceError, OperationalError
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core.conf import core_settings
from apps.core.store import StoreUnavailable
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore, checked


class DatabaseMetricsStore(MetricsStore):
    def __init__(self) -> None:
        self._totals: dict[tuple, MinuteAgg] = {}
        self._lock = threading.Lock()

    def merge(self, batch: dict[Key, MinuteAgg]) -> None:
        from apps.monitoring.services import rollup_add

        batch = checked(batch)
        if not batch:
            return
        try:
            rollup_add(batch=batch)  # a key refused as data is dropped there; nothing else is swallowed
        except (OperationalError, InterfaceError) as exc:  # the database cannot be reached: an outage
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

    def claim(self, key: str, ttl_s: int) -> bool:
        try:
            return bool(caches[core_settings.STORE_CACHE_ALIAS].add(key, "1", ttl_s))
        except _CACHE_UNREACHABLE as exc:
            raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc

    def release(self, key: str) -> None:
        try:
            caches[core_settings.STORE_CACHE_ALIAS].delete(key)
        except _CACHE_UNREACHABLE as exc:
            raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc


# The store cache is memory on the embedded default; these are what a Redis one raises when unreachable.
_CACHE_UNREACHABLE = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, OSError)
