"""The shared store: the Redis behind the django-redis cache when there is one, else nothing (memory backends)."""
from __future__ import annotations

from typing import Any

from django.core.cache import caches

from apps.core.conf import core_settings


def redis_client() -> Any | None:
    """The raw redis-py client of the store cache alias, or None on the embedded default."""
    alias = core_settings.STORE_CACHE_ALIAS
    backend = caches[alias]
    if backend.__class__.__module__.startswith("django_redis"):
        from django_redis import get_redis_connection

        return get_redis_connection(alias)
    return None


def store_key(*parts: object) -> str:
    """A key in Bulwark's namespace of the shared store, e.g. store_key("ratelimit", "{t1}", "k")."""
    return ":".join([core_settings.STORE_KEY_PREFIX, *(str(p) for p in parts)])
