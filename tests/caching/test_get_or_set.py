"""`get_or_set` for application data: tenant-scoped keys, tags, and one call of `fn` per concurrent miss."""
from __future__ import annotations

import threading
import time

import pytest

from apps.caching import services

pytestmark = pytest.mark.django_db


def test_value_is_computed_once_then_served(tenant_a):
    calls = []
    assert services.get_or_set("report", lambda: calls.append(1) or {"n": 1}, 60, tenant=tenant_a) == {"n": 1}
    assert services.get_or_set("report", lambda: calls.append(1) or {"n": 2}, 60, tenant=tenant_a) == {"n": 1}
    assert len(calls) == 1


def test_tenants_never_share_a_value(tenant_a, tenant_b):
    services.get_or_set("report", lambda: "a", 60, tenant=tenant_a)
    assert services.get_or_set("report", lambda: "b", 60, tenant=tenant_b) == "b"


def test_tag_invalidation_recomputes(tenant_a):
    services.get_or_set("report", lambda: 1, 60, tags=["reports"], tenant=tenant_a)
    services.get_or_set("other", lambda: 1, 60, tags=["others"], tenant=tenant_a)
    services.invalidate(tags=["reports"], tenant=tenant_a)
    assert services.get_or_set("report", lambda: 2, 60, tags=["reports"], tenant=tenant_a) == 2
    assert services.get_or_set("other", lambda: 2, 60, tags=["others"], tenant=tenant_a) == 1


def test_tenant_wide_invalidation_reaches_data_too(tenant_a):
    services.get_or_set("report", lambda: 1, 60, tenant=tenant_a)
    services.cache_invalidate(tenant=tenant_a, everything=True)
    assert services.get_or_set("report", lambda: 2, 60, tenant=tenant_a) == 2


def test_concurrent_misses_call_fn_once(tenant_a):
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "v"

    results = []
    threads = [threading.Thread(target=lambda: results.append(services.get_or_set("k", slow, 60, tenant=tenant_a)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == ["v"] * 8
    assert len(calls) == 1


def test_a_store_failure_after_the_call_does_not_call_fn_again(tenant_a, monkeypatch):
    from apps.caching.backends import get_backend
    from apps.core import health
    from apps.core.store import StoreUnavailable

    def down(**kwargs):
        raise StoreUnavailable("connection lost")

    monkeypatch.setattr(get_backend(), "set", down)
    calls = []
    assert services.get_or_set("report", lambda: calls.append(1) or "fresh", 60, tenant=tenant_a) == "fresh"
    assert calls == [1]
    assert "caching" in health.degraded_components()
