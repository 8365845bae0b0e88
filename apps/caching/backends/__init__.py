"""Storage of cached entries, locks and tag versions: the backend named by `BULWARK["CACHING"]["BACKEND"]`,
built by the core `BackendLoader` and rebuilt when the settings change."""
from __future__ import annotations

from apps.caching.conf import caching_settings
from apps.core.store import BackendLoader

backend_loader = BackendLoader(
    caching_settings,
    redis_default="apps.caching.backends.redis.RedisBackend",
    memory_default="apps.caching.backends.memory.MemoryBackend",
)
get_backend = backend_loader.get
