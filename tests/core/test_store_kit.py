"""The store kit: the outage guard on a fake clock, and the backend loader's load-once-reset-on-change rule."""
from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from apps.core import health
from apps.core.clock import FakeClock
from apps.core.conf import AppSettings
from apps.core.store import BackendLoader, StoreGuard, StoreUnavailable


def core_settings(**values) -> override_settings:
    from django.conf import settings

    bulwark = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), **values}}
    return override_settings(BULWARK=bulwark)


def test_the_guard_uses_the_store_while_it_answers():
    guard = StoreGuard("test:store", clock=FakeClock())
    assert guard.available()
    assert guard.run(lambda: "from store", lambda: "fallback") == "from store"
    assert not guard.is_down


def test_after_a_failure_the_store_is_skipped_for_the_retry_interval_then_probed():
    clock = FakeClock()
    guard = StoreGuard("test:store", clock=clock)
    with core_settings(STORE_RETRY_INTERVAL_S=2.0):
        guard.failed(StoreUnavailable("connection refused"))
        assert not guard.available()
        clock.advance(1.999)
        assert not guard.available()
        clock.advance(0.001)
        assert guard.available()


def test_only_one_caller_probes_a_dead_store_per_interval():
    clock = FakeClock()
    guard = StoreGuard("test:store", clock=clock)
    with core_settings(STORE_RETRY_INTERVAL_S=1.0):
        guard.failed("down")
        clock.advance(1.0)
        assert [guard.available() for _ in range(3)] == [True, False, False]
        guard.failed("still down")  # the probe failed: skip another full interval
        clock.advance(0.5)
        assert not guard.available()
        clock.advance(0.5)
        assert guard.available()


def test_run_falls_back_on_store_unavailable_and_skips_the_store_meanwhile():
    clock = FakeClock()
    guard = StoreGuard("test:store", clock=clock)
    calls = []

    def operation():
        calls.append(clock.monotonic())
        raise StoreUnavailable("timeout")

    assert guard.run(operation, lambda: "fallback") == "fallback"
    assert guard.run(operation, lambda: "fallback") == "fallback"
    assert len(calls) == 1


def test_other_errors_are_not_an_outage():
    guard = StoreGuard("test:store", clock=FakeClock())

    def broken():
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        guard.run(broken, lambda: "fallback")
    assert not guard.is_down


def test_an_outage_marks_health_degraded_and_recovery_marks_it_ok():
    clock = FakeClock()
    guard = StoreGuard("test:store", clock=clock)
    guard.failed(StoreUnavailable("connection refused"))
    assert "connection refused" in health.degraded_components()["test:store"]
    clock.advance(60)
    assert guard.run(lambda: 1, lambda: 0) == 1
    assert "test:store" not in health.degraded_components()


def test_an_outage_is_logged_once_per_log_interval(caplog):
    clock = FakeClock()
    guard = StoreGuard("test:store", clock=clock)
    with core_settings(OUTAGE_LOG_INTERVAL_S=10.0), caplog.at_level(logging.ERROR, logger="apps.core.store"):
        for _ in range(5):
            guard.failed("down")
            clock.advance(1)
        clock.advance(10)
        guard.failed("down")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "4 similar failures not logged" in errors[1].getMessage()


def test_the_retry_interval_is_validated_by_name():
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.conf import core_settings as settings_object

    with core_settings(STORE_RETRY_INTERVAL_S=0), pytest.raises(ImproperlyConfigured, match="STORE_RETRY_INTERVAL_S"):
        settings_object.validate()


class MemoryThing:
    pass


class RedisThing:
    pass


class OtherThing:
    pass


loader_settings = AppSettings("LOADERTEST", {"BACKEND": None})


def loader() -> BackendLoader:
    return BackendLoader(loader_settings, redis_default=f"{__name__}.RedisThing",
                         memory_default=f"{__name__}.MemoryThing")


def test_the_loader_builds_the_backend_once():
    backends = loader()
    assert backends.get() is backends.get()


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_without_redis_the_default_is_the_memory_backend():
    assert isinstance(loader().get(), MemoryThing)


def test_with_redis_the_default_is_the_redis_backend(redis_url):
    assert isinstance(loader().get(), RedisThing)


def test_the_loader_rebuilds_after_its_settings_change():
    from django.conf import settings

    backends = loader()
    first = backends.get()
    with override_settings(BULWARK={**settings.BULWARK, "LOADERTEST": {"BACKEND": f"{__name__}.OtherThing"}}):
        assert isinstance(backends.get(), OtherThing)
    assert backends.get() is not first
    assert not isinstance(backends.get(), OtherThing)


def test_unrelated_setting_changes_keep_the_backend():
    backends = loader()
    first = backends.get()
    with override_settings(USE_TZ=True):
        assert backends.get() is first
