"""The contract of a cache backend: entries with a TTL, owner-checked locks and versioned tags."""
from __future__ import annotations

from dataclasses import dataclass

LOCK_ACQUIRED, LOCK_HELD, LOCK_FREE = 1, 0, -1


@dataclass(frozen=True)
class Lookup:
    value: bytes | None
    # LOCK_ACQUIRED: this caller now holds the lock; LOCK_HELD: another does; LOCK_FREE: nobody (not tried).
    lock: int
    tag_versions: tuple[int, ...]


class CacheBackend:
    """One round trip per lookup: the entry, the current versions of its tags and, on a miss, the lock.

    Every method raises core's StoreUnavailable when the store cannot be reached (callers bypass the cache).
    """

    def lookup(self, *, key: str, tag_keys: list[str], lock_key: str, token: str, lock_ttl_ms: int,
               lock_on_miss: bool) -> Lookup:
        raise NotImplementedError

    def set(self, *, key: str, value: bytes, ttl_ms: int) -> None:
        raise NotImplementedError

    def acquire(self, *, lock_key: str, token: str, ttl_ms: int) -> bool:
        raise NotImplementedError

    def release(self, *, lock_key: str, token: str) -> None:
        """Release only when `token` still owns the lock (an expired leader must not free a successor's)."""
        raise NotImplementedError

    def bump_tags(self, *, tag_keys: list[str], ttl_s: int) -> None:
        raise NotImplementedError

    def tag_versions(self, *, tag_keys: list[str]) -> tuple[int, ...]:
        raise NotImplementedError

    def memory_usage(self, *, pattern: str, max_keys: int) -> dict:
        """{"backend", "bytes", "keys", "complete"} of the keys matching a glob pattern."""
        raise NotImplementedError
