"""Compiled, in-process snapshots of database configuration, refreshed through version counters in the store.

A process serves every request from its snapshot and asks the shared store at most once per
`SNAPSHOT_CHECK_INTERVAL_S` whether the version moved; a save anywhere bumps the version after commit,
so a change reaches every process within the interval plus one request. `follow(Model, key=...)` does the
bumping for every save and delete of a model. With the store down the last snapshot keeps serving (a stale
policy beats no policy); the version reads go through the core StoreGuard, which reports health.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from redis.exceptions import RedisError

from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.conf import core_settings
from apps.core.store import StoreGuard, StoreUnavailable, redis_client, store_key

T = TypeVar("T")
log = logging.getLogger(__name__)

_local_versions: dict[str, int] = {}
_local_lock = threading.Lock()


def _version_key(name: str, key: Hashable) -> str:
    return store_key("snapshot", name, str(key))


def read_version(name: str, key: Hashable) -> int:
    """The shared version of one key; raises StoreUnavailable when the store cannot be reached."""
    client = redis_client()
    if client is None:
        return _local_versions.get(_version_key(name, key), 0)
    try:
        raw = client.get(_version_key(name, key))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
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
        except (RedisError, OSError):  # the store is down: this process sees the change; others when it returns
            log.warning("could not bump snapshot version %s in the shared store", vkey, exc_info=True)


def bump_on_commit(name: str, key: Hashable, *, using: str | None = None) -> None:
    transaction.on_commit(lambda: bump_version(name, key), using=using)


class _Entry(Generic[T]):
    __slots__ = ("value", "version", "checked_at")

    def __init__(self, value: T, version: int, checked_at: float) -> None:
        self.value = value
        self.version = version
        self.checked_at = checked_at


class CompiledSnapshot(Generic[T]):
    """`build(key)` compiles the configuration of one key (usually a tenant id) into a fast in-memory object."""

    def __init__(self, name: str, build: Callable[[Hashable], T], *, clock: Clock = SYSTEM_CLOCK):
        self.name = name
        self.build = build
        self.clock = clock
        self._monotonic = clock.monotonic  # bound once: this runs on every request
        self._entries: dict[Hashable, _Entry[T]] = {}
        self._lock = threading.Lock()
        self._guard = StoreGuard(f"snapshot:{name}", clock=clock, description="shared store (snapshot versions)")
        _snapshots.setdefault(name, []).append(self)

    def get(self, key: Hashable) -> T:
        now = self._monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < core_settings.SNAPSHOT_CHECK_INTERVAL_S:
            return entry.value
        version = self._guard.run(lambda: read_version(self.name, key), lambda: None)
        if version is None:  # the store is down: a stale policy beats no policy
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

    def checked_at(self, key: Hashable) -> float:
        """When (this snapshot's monotonic clock) the key's copy last checked the shared version; now if none."""
        entry = self._entries.get(key)
        return entry.checked_at if entry is not None else self._monotonic()

    def invalidate(self, key: Hashable) -> None:
        """Bump the key's version once the surrounding transaction commits."""
        bump_on_commit(self.name, key)

    def follow(self, model: type[models.Model], *, key: Callable[[models.Model], Hashable | None]) -> None:
        """Keep this snapshot in step with `model`: every save and delete bumps the version of `key(instance)`
        once the transaction commits, from any door (admin, bulk admin delete, API, ORM, shell).

        `QuerySet.delete()` (the admin's "Delete selected") sends post_delete per object while a receiver is
        connected, so bulk deletes are followed. `QuerySet.update()` sends nothing: followed models should be
        `@audited`, whose queryset refuses it. A save that moves an object to another key (a new tenant, a
        renamed slug) bumps the old key too. `key` returning None means no snapshot entry depends on it.
        """
        uid = f"snapshot-{self.name}-{model._meta.label}"
        pending_old = f"_snapshot_old_key_{self.name}"

        def remember_old_key(sender, instance, raw=False, **kwargs) -> None:
            if raw or instance.pk is None:
                return
            old = sender._base_manager.filter(pk=instance.pk).first()
            instance.__dict__[pending_old] = key(old) if old is not None else None

        def on_save(sender, instance, using=None, **kwargs) -> None:
            new_key = key(instance)
            old_key = instance.__dict__.pop(pending_old, None)
            for changed in {new_key, old_key} - {None}:
                bump_on_commit(self.name, changed, using=using)

        def on_delete(sender, instance, using=None, **kwargs) -> None:
            deleted_key = key(instance)
            if deleted_key is not None:
                bump_on_commit(self.name, deleted_key, using=using)

        pre_save.connect(remember_old_key, sender=model, weak=False, dispatch_uid=f"{uid}-pre")
        post_save.connect(on_save, sender=model, weak=False, dispatch_uid=f"{uid}-save")
        post_delete.connect(on_delete, sender=model, weak=False, dispatch_uid=f"{uid}-delete")

    def unfollow(self, model: type[models.Model]) -> None:
        uid = f"snapshot-{self.name}-{model._meta.label}"
        pre_save.disconnect(sender=model, dispatch_uid=f"{uid}-pre")
        post_save.disconnect(sender=model, dispatch_uid=f"{uid}-save")
        post_delete.disconnect(sender=model, dispatch_uid=f"{uid}-delete")

    def drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop this process's compiled copies (tests)."""
        self._entries.clear()
