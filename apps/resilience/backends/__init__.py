"""Where breakers keep their shared record: the backend named by `BULWARK["RESILIENCE"]["BACKEND"]`, built by
the core `BackendLoader` and rebuilt when the settings change."""
from __future__ import annotations

from apps.core.store import BackendLoader
from apps.resilience.conf import resilience_settings

backend_loader = BackendLoader(
    resilience_settings,
    redis_default="apps.resilience.backends.redis.RedisBackend",
    memory_default="apps.resilience.backends.memory.MemoryBackend",
)
get_backend = backend_loader.get
