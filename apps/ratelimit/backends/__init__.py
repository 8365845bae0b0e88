"""Storage of rate-limit state: a base contract, an in-process memory backend and a Redis backend.

`get_backend()` is the one configured backend of the process (`BULWARK["RATELIMIT"]["BACKEND"]`), built by
the core `BackendLoader` and rebuilt when the settings change.
"""
from __future__ import annotations

from apps.core.store import BackendLoader
from apps.ratelimit.conf import ratelimit_settings

backend_loader = BackendLoader(
    ratelimit_settings,
    redis_default="apps.ratelimit.backends.redis.RedisBackend",
    memory_default="apps.ratelimit.backends.memory.MemoryBackend",
)
get_backend = backend_loader.get
