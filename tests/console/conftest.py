"""Console fixtures: each test on its own channel layer (in-memory, or channels-redis with a private prefix),
fast intervals, and signed-in sockets built the way a browser's are (session cookie, Origin)."""
from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

FAST = {"MIN_SEND_INTERVAL_S": 0.3, "PULSE_INTERVAL_S": 0.1, "METRICS_INTERVAL_S": 0.5, "PRINCIPAL_RECHECK_S": 0.3}


def layers(kind: str) -> dict:
    if kind == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": f"test-{uuid.uuid4().hex[:8]}"}}}


@pytest.fixture(params=["memory", "redis"])
def channel_layer_kind(request, settings):
    if request.param == "redis" and not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis (set REDIS_URL)")
    settings.CHANNEL_LAYERS = layers(request.param)
    settings.BULWARK = {**settings.BULWARK, "CONSOLE": FAST}
    return request.param


@pytest.fixture
def sink(redis_url, monkeypatch):
    """The recorder's sink replaced by a fresh one on the real store (no flusher thread behind the test)."""
    from apps.monitoring import recorder
    from apps.monitoring.backends.redis import RedisMetricsStore

    fresh = recorder.RequestSink(RedisMetricsStore())
    monkeypatch.setattr(recorder, "sink", fresh)
    return fresh


def requests(sink, tenant, count: int, errors: int, duration_ms: float) -> None:
    """`count` requests of the tenant just now, the first `errors` of them 500s, each taking `duration_ms`."""
    now = time.time()
    for n in range(count):
        sink.record(tenant.pk, "api/v1/orders", "GET", 500 if n < errors else 200, duration_ms, now=now)
    sink.flush(now)


def sample(cpu: float, memory: float, host: str = "web-1", seconds_ago: float = 5) -> None:
    """A system sample of `host` taken a few seconds ago."""
    from apps.monitoring.models import SystemSample

    SystemSample.objects.create(host=host, taken_at=datetime.fromtimestamp(time.time() - seconds_ago, tz=UTC),
                                cpu_percent=cpu, memory_percent=memory, disk_percent=10)


@pytest.fixture(autouse=True)
def _no_pulse_left_behind():
    """A pulse belongs to one test's event loop: none may outlive its test."""
    from apps.console.hub import hub

    yield
    for pulse in hub.pulses.values():
        pulse.stop()
    hub.pulses.clear()


@pytest.fixture
def socket_for():
    """socket_for(user=None, token=None, query="") -> a WebsocketCommunicator on /ws/console/ of the ASGI app."""
    from django.test import Client

    from config.asgi import application

    async def make(user=None, token: str | None = None, query: str = "") -> WebsocketCommunicator:
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
        if user is not None:
            client = Client()
            await sync_to_async(client.force_login)(user)
            headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        path = "/ws/console/" + (f"?{query}" if query else "")
        return WebsocketCommunicator(application, path, headers=headers)

    return make


async def receive_until(communicator, predicate, limit: int = 40) -> list[dict]:
    """Messages received until one satisfies `predicate` (each waits at most 10 s; AssertionError after `limit`)."""
    seen = []
    for _ in range(limit):
        message = await communicator.receive_json_from(timeout=10)
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"no matching message among {len(seen)}: {seen[-1] if seen else None}")


async def closed_with(communicator, limit: int = 100) -> int:
    """The code the server closed the socket with, skipping the state messages sent before (each output
    waits at most 10 s: a socket that stays open fails the test)."""
    for _ in range(limit):
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output.get("code")
    raise AssertionError(f"the socket was not closed after {limit} messages")


async def close(communicator) -> None:
    from channels.db import database_sync_to_async
    from django.db import connections

    await communicator.disconnect()
    await database_sync_to_async(connections.close_all)()
