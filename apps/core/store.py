"""The shared store and the kit every backend on it uses: one error, one outage guard, one backend loader.

The store is the Redis behind the django-redis cache when there is one, else nothing (memory backends).
- `StoreUnavailable`: the only error a backend raises when its store cannot be reached (redis-py's
  errors stay inside backends).
- `StoreGuard`: after a failure, skip the store for `BULWARK["CORE"]["STORE_RETRY_INTERVAL_S"]`, then let
  one call probe it; reports the outage to health and logs it at most once per `OUTAGE_LOG_INTERVAL_S`.
- `BackendLoader`: the backend named by a settings section's `BACKEND`, built once per process and
  rebuilt after its settings change.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.cache import caches
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from apps.core import health
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.conf import AppSettings, core_settings

T = TypeVar("T")
log = logging.getLogger(__name__)


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


class StoreUnavailable(Exception):
    """A backend cannot reach its shared store; the caller falls back (fail open/closed, bypass, local state)."""


class StoreGuard:
    """Shields the hot path from a dead store: one failure, then no store calls for the retry interval.

    Use `run(operation, fallback)`, or `available()` / `failed()` / `succeeded()` around a call of your own.
    When the interval has passed, the first caller probes the store and the others keep skipping it until
    that probe reports, so an outage costs one timeout per interval, not one per request.
    """

    def __init__(self, component: str, *, clock: Clock = SYSTEM_CLOCK, description: str = "shared store",
                 aliases: dict[str, tuple[AppSettings, str]] | None = None) -> None:
        self.component = component
        self.description = description
        self.clock = clock
        # {core setting: (app section, its earlier deprecated name)}: a deprecated name, when set, wins here.
        self.aliases = aliases or {}
        self._down_until = 0.0
        self._down = False
        self._last_log = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def _setting(self, name: str) -> float:
        alias = self.aliases.get(name)
        if alias is not None:
            value = getattr(alias[0], alias[1])
            if value is not None:
                return value
        return getattr(core_settings, name)

    def retry_interval_s(self) -> float:
        return self._setting("STORE_RETRY_INTERVAL_S")

    @property
    def is_down(self) -> bool:
        """The store failed and has not answered since (whether or not a probe is due)."""
        return self._down

    def available(self) -> bool:
        """May this call use the store? Claims the probe when the retry interval is over."""
        if not self._down:
            return True
        now = self.clock.monotonic()
        if now < self._down_until:
            return False
        with self._lock:
            if now < self._down_until:
                return False
            self._down_until = now + self.retry_interval_s()  # the others wait for this probe
            return True

    def failed(self, reason: object) -> None:
        now = self.clock.monotonic()
        text = str(reason)[:200] or reason.__class__.__name__
        with self._lock:
            self._down = True
            self._down_until = now + self.retry_interval_s()
            if now - self._last_log >= self._setting("OUTAGE_LOG_INTERVAL_S"):
                log.error("%s unreachable for %s (%s); falling back (%d similar failures not logged)",
                          self.description, self.component, text, self._suppressed)
                self._last_log, self._suppressed = now, 0
            else:
                self._suppressed += 1
        health.mark_degraded(self.component, f"{self.description} unreachable: {text}")

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            self._down = False
            self._down_until = 0.0
            self._last_log = float("-inf")
        log.warning("%s reachable again for %s", self.description, self.component)
        health.mark_ok(self.component)

    def run(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """`operation()` through the guard; `fallback()` when the store is skipped or raises StoreUnavailable."""
        if not self.available():
            return fallback()
        try:
            result = operation()
        except StoreUnavailable as exc:
            self.failed(exc)
            return fallback()
        self.succeeded()
        return result


class BackendLoader(Generic[T]):
    """The backend of one settings section, loaded once from its dotted path, reset when settings change.

    `BACKEND = None` in the section means `redis_default` when the shared store is Redis, else
    `memory_default`. Any change of `BULWARK` or `CACHES` (override_settings in tests) drops the built
    backend; the next `get()` builds it again.
    """

    RESET_ON = frozenset({"BULWARK", "CACHES"})

    def __init__(self, settings: AppSettings, *, redis_default: str, memory_default: str,
                 setting: str = "BACKEND") -> None:
        self.settings = settings
        self.setting = setting
        self.redis_default = redis_default
        self.memory_default = memory_default
        self._backend: T | None = None
        self._lock = threading.Lock()
        setting_changed.connect(self._on_setting_changed, weak=False)

    def path(self) -> str:
        configured = getattr(self.settings, self.setting)
        if configured:
            return configured
        return self.redis_default if redis_client() is not None else self.memory_default

    def get(self) -> T:
        backend = self._backend
        if backend is None:
            with self._lock:
                backend = self._backend
                if backend is None:
                    backend = self._backend = import_string(self.path())()
        return backend

    def reset(self) -> None:
        with self._lock:
            self._backend = None

    def _on_setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting in self.RESET_ON:
            self.reset()
