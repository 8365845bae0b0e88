"""Redis stops and starts: requests are answered from the origin, health says degraded, the cache recovers."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from apps.core import health
from tests.caching import views
from tests.caching.factories import CachePolicyFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]
PORT = 18530


class OwnRedis:
    """A redis-server of this test alone, on a port of the caching range."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture
def own_redis(settings):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is taken")
    server = OwnRedis(PORT)
    server.start()
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{PORT}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}
    settings.BULWARK = {**settings.BULWARK, "CACHING": {"STORE_RETRY_S": 0.2}}
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
