"""The embedded default: one process's memory, bounded by bytes with least-recently-used eviction."""
from __future__ import annotations

import fnmatch
import threading
from collections import OrderedDict

from apps.caching.backends.base import LOCK_ACQUIRED, LOCK_FREE, LOCK_HELD, CacheBackend, Lookup
from apps.caching.conf import caching_settings
from apps.core.clock import SYSTEM_CLOCK, Clock


class MemoryBackend(CacheBackend):
    def __init__(self, *, max_bytes: int | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.max_bytes = max_bytes or caching_settings.MEMORY_MAX_BYTES
        self.clock = clock.monotonic  # expiry deadlines: intervals, never wall time
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._locks: dict[str, tuple[str, float]] = {}
        self._tags: dict[str, tuple[int, float]] = {}
        self._mutex = threading.Lock()

    def _get(self, key: str) -> bytes | None:
        item = self._entries.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def _drop(self, key: str) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._bytes -= len(item[0])

    def _lock_owner(self, lock_key: str) -> str | None:
        item = self._locks.get(lock_key)
        if item is None:
            return None
        if item[1] <= self.clock():
            del self._locks[lock_key]
            return None
        return item[0]

    def _version(self, tag_key: str) -> int:
        item = self._tags.get(tag_key)
        if item is None or item[1] <= self.clock():
            return 0
        return item[0]

    def lookup(self, *, key, tag_keys, lock_key, token, lock_ttl_ms, lock_on_miss) -> Lookup:
        with self._mutex:
            value = self._get(key)
            owner = self._lock_owner(lock_key)
            if value is None and lock_on_miss and owner is None:
                self._locks[lock_key] = (token, self.clock() + lock_ttl_ms / 1000)
                lock = LOCK_ACQUIRED
            else:
                lock = LOCK_FREE if owner is None else LOCK_HELD
            return Lookup(value=value, lock=lock, tag_versions=tuple(self._version(t) for t in tag_keys))

    def set(self, *, key, value, ttl_ms) -> None:
        if len(value) > self.max_bytes:
            return
        with self._mutex:
            self._drop(key)
            self._entries[key] = (value, self.clock() + ttl_ms / 1000)
            self._bytes += len(value)
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)

    def acquire(self, *, lock_key, token, ttl_ms) -> bool:
        with self._mutex:
            if self._lock_owner(lock_key) is not None:
                return False
            self._locks[lock_key] = (token, self.clock() + ttl_ms / 1000)
            return True

    def release(self, *, lock_key, token) -> None:
        with self._mutex:
            if self._lock_owner(lock_key) == token:
                del self._locks[lock_key]

    def bump_tags(self, *, tag_keys, ttl_s) -> None:
        with self._mutex:
            for tag_key in tag_keys:
                self._tags[tag_key] = (self._version(tag_key) + 1, self.clock() + ttl_s)

    def tag_versions(self, *, tag_keys):
        with self._mutex:
            return tuple(self._version(t) for t in tag_keys)

    def memory_usage(self, *, pattern, max_keys) -> dict:
        with self._mutex:
            sizes = [len(v) for k, (v, _) in self._entries.items() if fnmatch.fnmatchcase(k, pattern)]
        return {"backend": "memory", "bytes": sum(sizes), "keys": len(sizes), "complete": True}
