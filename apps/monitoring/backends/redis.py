"""The Redis store: one hash per (tenant, route, method, minute), merged by every process in one transaction.

redis-py's errors stay here: every method raises core's StoreUnavailable when Redis cannot be reached (a
connection or timeout error). Any other Redis error (a refused command, WRONGTYPE) is a bug or bad data,
not an outage: it propagates as it is, and the guard does not mark the store down for it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core.store import StoreUnavailable, redis_client, store_key
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore, checked
from apps.monitoring.conf import monitoring_settings

_MERGE = (Path(__file__).parent / "lua" / "merge.lua").read_text()
SEP = "\x1f"


def _tag(tenant_id: int | None) -> str:
    return "{m" + ("p" if tenant_id is None else str(tenant_id)) + "}"


def _tenant_of(text: str) -> int | None:
    return None if text == "p" else int(text)


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc


class RedisMetricsStore(MetricsStore):
    def __init__(self, client=None) -> None:
        self._client = client

    @property
    def client(self):
        return self._client or redis_client()

    def _hash(self, tenant_id, minute, member) -> str:
        return store_key("monitoring", _tag(tenant_id), "m", minute, member)

    def _index(self, tenant_id, minute) -> str:
        return store_key("monitoring", _tag(tenant_id), "idx", minute)

    @property
    def _pending(self) -> str:
        return store_key("monitoring", "pending")

    @property
    def _totals(self) -> str:
        return store_key("monitoring", "totals")

    def merge(self, batch: dict[Key, MinuteAgg]) -> None:
        with _unavailable_on_error():
            self._merge(batch)

    def _merge(self, batch: dict[Key, MinuteAgg]) -> None:
        batch = checked(batch)
        if not batch:
            return
        client = self.client
        ttl = int(monitoring_settings.LIVE_TTL_S)
        script = client.register_script(_MERGE)
        # MULTI/EXEC: Redis applies the merge once it has all of it, so a connection lost midway writes nothing
        # (and the caller keeps the batch to send again) instead of some keys, counted twice on the resend.
        pipe = client.pipeline(transaction=True)
        totals: dict[str, float] = {}
        for (tenant_id, route, method, minute), agg in batch.items():
            member = f"{method} {route}"
            args = [ttl, agg.duration_ms_min, agg.duration_ms_max]
            for field, value in agg.to_fields().items():
                args += [field, value]
            script(keys=[self._hash(tenant_id, minute, member)], args=args, client=pipe)
            pipe.sadd(self._index(tenant_id, minute), member)
            pipe.expire(self._index(tenant_id, minute), ttl)
            pipe.zadd(self._pending, {f"{'p' if tenant_id is None else tenant_id}:{minute}": minute})
            prefix = SEP.join(("p" if tenant_id is None else str(tenant_id), route, method)) + SEP
            for field, value in agg.to_fields().items():
                totals[prefix + field] = totals.get(prefix + field, 0) + value
        for field, value in totals.items():
            pipe.hincrbyfloat(self._totals, field, value)
        pipe.execute()

    def _read(self, tenant_id: int | None, minutes: list[int], *, take: bool) -> dict[Key, MinuteAgg]:
        if not minutes:
            return {}
        client = self.client
        pipe = client.pipeline(transaction=False)
        for minute in minutes:
            pipe.smembers(self._index(tenant_id, minute))
        members = pipe.execute()
        wanted = [(minute, m.decode() if isinstance(m, bytes) else m)
                  for minute, ms in zip(minutes, members, strict=True) for m in ms]
        if not wanted:
            if take:
                client.zrem(self._pending, *[f"{'p' if tenant_id is None else tenant_id}:{m}" for m in minutes])
            return {}
        pipe = client.pipeline(transaction=take)
        for minute, member in wanted:
            pipe.hgetall(self._hash(tenant_id, minute, member))
            if take:
                pipe.delete(self._hash(tenant_id, minute, member))
                pipe.srem(self._index(tenant_id, minute), member)
        if take:
            pipe.zrem(self._pending, *[f"{'p' if tenant_id is None else tenant_id}:{m}" for m in minutes])
        replies = pipe.execute()
        step = 3 if take else 1
        found: dict[Key, MinuteAgg] = {}
        for i, (minute, member) in enumerate(wanted):
            fields = replies[i * step]
            if not fields:
                continue
            method, _, route = member.partition(" ")
            found[(tenant_id, route, method, minute)] = MinuteAgg.from_fields(fields)
        return found

    def _minutes(self, tenant_id: int | None, low: float, high: float) -> list[int]:
        prefix = f"{'p' if tenant_id is None else tenant_id}:"
        raw = self.client.zrangebyscore(self._pending, low, high)
        names = [r.decode() if isinstance(r, bytes) else r for r in raw]
        return [int(n.split(":", 1)[1]) for n in names if n.startswith(prefix)]

    def live(self, *, tenant_id: int | None, start_minute: int, end_minute: int) -> dict[Key, MinuteAgg]:
        with _unavailable_on_error():
            return self._read(tenant_id, self._minutes(tenant_id, start_minute, end_minute), take=False)

    def fold(self, *, tenant_id: int | None, before_minute: int) -> dict[Key, MinuteAgg]:
        with _unavailable_on_error():
            return self._read(tenant_id, self._minutes(tenant_id, "-inf", f"({before_minute}"), take=True)

    def totals(self) -> dict[tuple, MinuteAgg]:
        with _unavailable_on_error():
            return self._totals_read()

    def claim(self, key: str, ttl_s: int) -> bool:
        with _unavailable_on_error():
            return bool(self.client.set(key, "1", nx=True, ex=ttl_s))

    def release(self, key: str) -> None:
        with _unavailable_on_error():
            self.client.delete(key)

    def _totals_read(self) -> dict[tuple, MinuteAgg]:
        grouped: dict[tuple, dict[str, bytes]] = {}
        for raw_field, value in self.client.hgetall(self._totals).items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            tenant, route, method, name = field.split(SEP)
            grouped.setdefault((_tenant_of(tenant), route, method), {})[name] = value
        return {key: MinuteAgg.from_fields(fields) for key, fields in grouped.items()}
