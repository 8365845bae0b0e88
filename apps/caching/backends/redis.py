"""The Redis backend: shared by every process and host; lookups are one EVALSHA."""
from __future__ import annotations

import threading
from pathlib import Path

from redis.exceptions import RedisError

from apps.caching.backends.base import CacheBackend, Lookup
from apps.core.store import StoreUnavailable, redis_client

_LUA = Path(__file__).parent / "lua"


class RedisBackend(CacheBackend):
    def __init__(self, client=None) -> None:
        self._given_client = client
        self._scripts: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def client(self):
        client = self._given_client or redis_client()
        if client is None:
            raise StoreUnavailable("the shared store is not Redis")
        return client

    def _script(self, name: str):
        script = self._scripts.get(name)
        if script is None:
            with self._lock:
                script = self.client.register_script((_LUA / f"{name}.lua").read_text())
                self._scripts[name] = script
        return script

    def lookup(self, *, key, tag_keys, lock_key, token, lock_ttl_ms, lock_on_miss) -> Lookup:
        try:
            raw = self._script("lookup")(keys=[key, lock_key, *tag_keys],
                                         args=[token, lock_ttl_ms, "1" if lock_on_miss else "0"])
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return Lookup(value=raw[0], lock=int(raw[1]), tag_versions=tuple(int(v) for v in raw[2:]))

    def set(self, *, key, value, ttl_ms) -> None:
        try:
            self.client.set(key, value, px=max(1, int(ttl_ms)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def acquire(self, *, lock_key, token, ttl_ms) -> bool:
        try:
            return bool(self.client.set(lock_key, token, nx=True, px=int(ttl_ms)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def release(self, *, lock_key, token) -> None:
        try:
            self._script("release")(keys=[lock_key], args=[token])
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def bump_tags(self, *, tag_keys, ttl_s) -> None:
        if not tag_keys:
            return
        try:
            self._script("bump_tags")(keys=tag_keys, args=[int(ttl_s)])
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def tag_versions(self, *, tag_keys):
        if not tag_keys:
            return ()
        try:
            return tuple(int(v or 0) for v in self.client.mget(tag_keys))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def memory_usage(self, *, pattern, max_keys) -> dict:
        total, keys, complete = 0, 0, True
        try:
            client = self.client
            batch: list = []
            for key in client.scan_iter(match=pattern, count=1000):
                if keys >= max_keys:
                    complete = False
                    break
                batch.append(key)
                keys += 1
                if len(batch) >= 500:
                    total += self._usage(client, batch)
                    batch = []
            total += self._usage(client, batch)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {"backend": "redis", "bytes": total, "keys": keys, "complete": complete}

    @staticmethod
    def _usage(client, keys: list) -> int:
        if not keys:
            return 0
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key)
        return sum(size or 0 for size in pipe.execute())
