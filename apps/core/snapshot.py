"""Compiled, in-process snapshots of database configuration, refreshed through version counters in the store.

A process serves every request from its snapshot and asks the shared store at most once per
`SNAPSHOT_CHECK_INTERVAL_S` whether the version moved; a save anywhere bumps the version after commit,
so a change reaches every process within the interval plus one request. With the store down the last
snapshot keeps serving (a stale policy beats no policy) and the failure is reported to health.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.db import transaction

from apps.core import health
from apps.core.conf import core_settings
from apps.core.store import redis_client, store_key

T = TypeVar("T")
log = logging.getLogger(__name__)

_local_versions: dict[str, int] = {}
_local_lock = threading.Lock()


def _version_key(name: str, key: Hashable) -> str:
    return store_key("snapshot", name, str(key))


def read_version(name: str, key: Hashable) -> int:
    client = redis_client()
    if client is None:
        return _local_versions.get(_version_key(name, key), 0)
    raw = client.get(_version_key(name, key))
    return int(raw) if raw is not None else 0


_snapshots: dict[str, list[CompiledSnapshot]] = {}


def bump_version(name: str, key: Hashable) -> None:
    """Bump now. Prefer `bump_on_commit` inside a transaction, so no process rebuilds from uncommitted rows.

    This process drops its compiled copy at once; the others see the new version within the interval.
    """
    for snapshot in _snapshots.get(name, ()):
        snapshot.drop(key)
    vkey = _version_key(name, key)
    with _local_lock:
        _local_versions[vkey] = _local_versions.get(vkey, 0) + 1
    client = redis_client()
    if client is not None:
        try:
            client.incr(vkey)
        except Exception:  # the store is down: this process sees the change; others will when it returns
            log.warning("could not bump snapshot version %s in the shared store", vkey, exc_info=True)


def bump_on_commit(name: str, key: Hashable) -> None:
    transaction.on_commit(lambda: bump_version(name, key))


class _Entry(Generic[T]):
    __slots__ = ("value", "version", "checked_at")

    def __init__(self, value: T, version: int, checked_at: float) -> None:
        self.value = value
        self.version = version
        self.checked_at = checked_at


class CompiledSnapshot(Generic[T]):
    """`build(key)` compiles the configuration of one key (usually a tenant id) into a fast in-memory object."""

    def __init__(self, name: str, build: Callable[[Hashable], T], *, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.build = build
        self.clock = clock
        self._entries: dict[Hashable, _Entry[T]] = {}
        self._lock = threading.Lock()
        _snapshots.setdefault(name, []).append(self)

    def get(self, key: Hashable) -> T:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < core_settings.SNAPSHOT_CHECK_INTERVAL_S:
            return entry.value
        try:
            version = read_version(self.name, key)
            health.mark_ok(f"snapshot:{self.name}")
        except Exception as exc:
            health.mark_degraded(f"snapshot:{self.name}", f"shared store unreachable: {exc.__class__.__name__}")
            if entry is not None:
                entry.checked_at = now
                return entry.value
            version = -1
        if entry is not None and entry.version == version:
            entry.checked_at = now
            return entry.value
        with self._lock:
            value = self.build(key)
            self._entries[key] = _Entry(value, version, now)
        return value

    def invalidate(self, key: Hashable) -> None:
        """Bump the key's version once the surrounding transaction commits."""
        bump_on_commit(self.name, key)

    def drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop this process's compiled copies (tests)."""
        self._entries.clear()
