"""Bulwark's settings namespace: `settings.BULWARK[SECTION][KEY]`, with defaults and validation per section."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.core.validators import slug_re as SLUG_RE


class AppSettings:
    """One section of `settings.BULWARK`, read once, validated loudly, reloaded when tests override settings.

    `validators` maps a key to a callable that raises ValueError with a human reason. `deprecated` maps an
    earlier key, still read, to the setting that replaces it; setting it warns (DeprecationWarning).
    """

    def __init__(
        self,
        section: str,
        defaults: Mapping[str, Any],
        validators: Mapping[str, Callable[[Any], None]] | None = None,
        deprecated: Mapping[str, str] | None = None,
    ) -> None:
        self.section = section
        self.defaults = dict(defaults)
        self.validators = dict(validators or {})
        self.deprecated = dict(deprecated or {})
        self._values: dict[str, Any] | None = None
        setting_changed.connect(self._on_setting_changed, weak=False)

    def _load(self) -> dict[str, Any]:
        user = getattr(settings, "BULWARK", {}).get(self.section, {}) or {}
        unknown = set(user) - set(self.defaults)
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown setting(s) BULWARK[{self.section!r}]: {', '.join(sorted(unknown))}. "
                f"Known: {', '.join(sorted(self.defaults))}"
            )
        for key in sorted(set(user) & set(self.deprecated)):
            warnings.warn(f"BULWARK[{self.section!r}][{key!r}] is deprecated; use {self.deprecated[key]}",
                          DeprecationWarning, stacklevel=2)
        values = {**self.defaults, **user}
        for key, validate in self.validators.items():
            try:
                validate(values[key])
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(f"BULWARK[{self.section!r}][{key!r}]: {exc}") from exc
        return values

    def __getattr__(self, key: str) -> Any:
        # Reached only for a setting not read since the last load: loaded values are then copied onto the
        # instance, so the hot path reads them as plain attributes (no Python call per read).
        if key.startswith("_") or key in {"section", "defaults", "validators", "deprecated"}:
            raise AttributeError(key)
        if self._values is None:
            self._set_values(self._load())
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"BULWARK[{self.section!r}] has no setting {key!r}") from None

    def validate(self) -> None:
        self._set_values(self._load())

    def _set_values(self, values: dict[str, Any] | None) -> None:
        for key in self._values or ():
            self.__dict__.pop(key, None)
        self._values = values
        if values is not None:
            self.__dict__.update(values)

    def _on_setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == "BULWARK":
            self._set_values(None)


def positive_number(value: Any) -> None:
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"must be a positive number, got {value!r}")


def positive_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")


def optional_positive_number(value: Any) -> None:
    if value is not None:
        positive_number(value)


def optional_slug(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not SLUG_RE.fullmatch(value)):
        raise ValueError(f"must be a tenant slug or None, got {value!r}")


core_settings = AppSettings(
    "CORE",
    defaults={
        # CIDRs of reverse proxies whose X-Forwarded-For is believed (e.g. ["10.0.0.0/8"]).
        "TRUSTED_PROXIES": [],
        # How often a process checks the shared version counters of compiled snapshots.
        "SNAPSHOT_CHECK_INTERVAL_S": 1.0,
        # The cache alias whose Redis connection is the shared store (when it is django-redis).
        "STORE_CACHE_ALIAS": "default",
        # Key prefix of everything Bulwark keeps in the shared store.
        "STORE_KEY_PREFIX": "bulwark",
        # After a shared-store failure, every StoreGuard skips the store this long before one call retries.
        "STORE_RETRY_INTERVAL_S": 1.0,
        # A store outage is logged at most once per interval per guard (health says "degraded" meanwhile).
        "OUTAGE_LOG_INTERVAL_S": 60.0,
        # Slug of the tenant whose policies govern requests without a tenant (rate limits, caching, ...).
        "ANONYMOUS_TENANT": None,
        # Longest regular expression a tenant may store (rate-limit and cache path patterns, ...).
        "PATTERN_MAX_LENGTH": 512,
        # Retry-After (whole seconds) of the 503 answered when no database connection was free in time.
        "DB_BUSY_RETRY_AFTER_S": 1,
        # /readyz answers 503 when the shared store is down (instead of 200 "degraded").
        "HEALTH_REQUIRE_STORE": False,
        # Deepest nesting of arrays/objects a JSON request body may have (400 beyond, before any serializer).
        "MAX_JSON_DEPTH": 32,
        # How often the one stats flusher of each process drains every registered sink (apps.core.stats).
        "STATS_FLUSH_INTERVAL_S": 5.0,
    },
    validators={
        "SNAPSHOT_CHECK_INTERVAL_S": positive_number,
        "STORE_RETRY_INTERVAL_S": positive_number,
        "OUTAGE_LOG_INTERVAL_S": positive_number,
        "ANONYMOUS_TENANT": optional_slug,
        "PATTERN_MAX_LENGTH": positive_number,
        "DB_BUSY_RETRY_AFTER_S": positive_number,
        "MAX_JSON_DEPTH": positive_number,
        "STATS_FLUSH_INTERVAL_S": positive_number,
    },
)
