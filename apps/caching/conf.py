"""Settings of the response cache: `settings.BULWARK["CACHING"]`, validated once."""
from __future__ import annotations

from typing import Any

from apps.core.conf import AppSettings, optional_positive_number, optional_slug


def _optional_dotted_path(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or "." not in value):
        raise ValueError(f"must be None (choose by REDIS_URL) or a dotted path, got {value!r}")


def _positive_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")


def _base_url(value: Any) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) origin such as https://api.example.com, got {value!r}")


caching_settings = AppSettings(
    "CACHING",
    defaults={
        # Dotted path of the backend class; None picks Redis when the shared store is Redis, else memory.
        "BACKEND": None,
        # Upper bound of the in-process memory backend (bytes of stored values); LRU beyond it.
        "MEMORY_MAX_BYTES": 64 * 1024 * 1024,
        # Deprecated (read while set): BULWARK["CORE"]["ANONYMOUS_TENANT"] is the one setting.
        "ANONYMOUS_TENANT": None,
        # The one origin call of a stampede holds a lock this long at most (a crashed leader frees it).
        "LOCK_TTL_MS": 10_000,
        # How long the other requests of a stampede wait for the leader before going to the origin.
        "LOCK_WAIT_MS": 3_000,
        # How often a waiting request looks for the leader's response.
        "LOCK_POLL_MS": 15,
        # Deprecated (read while set): BULWARK["CORE"]["STORE_RETRY_INTERVAL_S"] is the one retry setting.
        "STORE_RETRY_S": None,
        # Tag versions live this long after an invalidation; entries never outlive it (policy validation).
        "TAG_VERSION_TTL_S": 7 * 24 * 3600,
        # Deprecated (read while set): BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"], the one stats flusher's interval.
        "STATS_FLUSH_INTERVAL_S": None,
        # Warm URLs given as paths are fetched on this origin (the public host is part of cache keys).
        "WARM_BASE_URL": "http://localhost",
        # The Accept header of warming requests (Accept is part of cache keys).
        "WARM_ACCEPT": "application/json",
        # The memory report of the Redis backend looks at no more keys than this (SCAN + MEMORY USAGE).
        "MEMORY_REPORT_MAX_KEYS": 20_000,
    },
    validators={
        "BACKEND": _optional_dotted_path,
        "ANONYMOUS_TENANT": optional_slug,
        "MEMORY_MAX_BYTES": _positive_int,
        "LOCK_TTL_MS": _positive_int,
        "LOCK_WAIT_MS": _positive_int,
        "LOCK_POLL_MS": _positive_int,
        "STORE_RETRY_S": optional_positive_number,
        "TAG_VERSION_TTL_S": _positive_int,
        "STATS_FLUSH_INTERVAL_S": optional_positive_number,
        "MEMORY_REPORT_MAX_KEYS": _positive_int,
        "WARM_BASE_URL": _base_url,
    },
    deprecated={
        "ANONYMOUS_TENANT": 'BULWARK["CORE"]["ANONYMOUS_TENANT"]',
        "STORE_RETRY_S": 'BULWARK["CORE"]["STORE_RETRY_INTERVAL_S"]',
        "STATS_FLUSH_INTERVAL_S": 'BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"]',
    },
)
