"""Redis stops and starts: requests are answered from the origin, health says degraded, the cache recovers."""
from __future__ import annotations

import time

import pytest

from apps.core import health
from benchmarks.ratelimit_harness import port
from tests.caching import views
from tests.caching.factories import CachePolicyFactory
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]
PORT = port(230)


@pytest.fixture
def own_redis(settings):
    server = RedisServer(PORT)
    server.start()
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{PORT}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}
    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), "STORE_RETRY_INTERVAL_S": 0.2}}
    try:
        yield server
    finally:
        server.stop()


def test_redis_outage_bypasses_the_cache_and_recovers(own_redis, tenant_a, token_client):
    client = token_client(tenant_a, "viewer")
    CachePolicyFactory(tenant=tenant_a, path_pattern="^/items/")
    client.get("/items/1/")
    assert client.get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")

    own_redis.stop()
    for _ in range(3):
        response = client.get("/items/1/")
        assert response.status_code == 200
        assert response["Cache-Status"] == "Bulwark; fwd=bypass; detail=store-unavailable"
    assert "caching" in health.degraded_components()
    assert views.calls["item"] == 4

    own_redis.start()
    deadline = time.monotonic() + 10
    statuses = []
    while time.monotonic() < deadline:
        time.sleep(0.25)
        statuses.append(client.get("/items/1/")["Cache-Status"])
        if statuses[-1].startswith("Bulwark; hit"):
            break
    assert statuses[-1].startswith("Bulwark; hit"), statuses
    assert "caching" not in health.degraded_components()
