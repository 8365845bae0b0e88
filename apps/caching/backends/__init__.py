"""Storage of cached entries, locks and tag versions; the backend is chosen once from settings."""
from __future__ import annotations

import threading

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from apps.caching.backends.base import CacheBackend
from apps.caching.conf import caching_settings
from apps.core.store import redis_client

_backend: CacheBackend | None = None
_lock = threading.Lock()


def get_backend() -> CacheBackend:
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                path = caching_settings.BACKEND or (
                    "apps.caching.backends.redis.RedisBackend"
                    if redis_client() is not None
                    else "apps.caching.backends.memory.MemoryBackend"
                )
                _backend = import_string(path)()
    return _backend


def reset_backend(**kwargs) -> None:
    global _backend
    _backend = None


setting_changed.connect(reset_backend, weak=False)
