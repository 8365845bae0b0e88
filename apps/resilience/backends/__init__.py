"""Where breakers keep their shared record: the backend chosen by `BULWARK["RESILIENCE"]["BACKEND"]`."""
from __future__ import annotations

from functools import lru_cache

from django.utils.module_loading import import_string

from apps.resilience.backends.base import BreakerBackend


@lru_cache(maxsize=1)
def get_backend() -> BreakerBackend:
    """The configured backend, built once per process (tests clear it with `get_backend.cache_clear()`)."""
    from apps.core.store import redis_client
    from apps.resilience.conf import resilience_settings

    path = resilience_settings.BACKEND
    if path is None:
        path = (
            "apps.resilience.backends.redis.RedisBackend" if redis_client() is not None
            else "apps.resilience.backends.memory.MemoryBackend"
        )
    return import_string(path)()
