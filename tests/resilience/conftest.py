"""Resilience fixtures: a fake clock, a fresh process registry per test, both backends, a private redis-server."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

from apps.resilience.backends import get_backend
from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.runtime import registry

T0 = 1_700_000_040.0  # a whole minute, so minute arithmetic stays readable


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def fresh_registry(clock):
    """The process registry on the fake clock and a new memory backend; flushing is done by the test."""
    registry.stop()  # a flusher another test started must not flush this test's breakers behind its back
    saved = (registry.clock, registry._backend, registry.background)
    registry.clock = clock
    registry._backend = MemoryBackend()
    registry.background = False
    registry.fallback = None
    registry.breakers.clear()
    registry.events.clear()
    get_backend.cache_clear()
    yield registry
    registry.stop()
    registry.clock, registry._backend, registry.background = saved
    registry.fallback = None
    registry.breakers.clear()
    registry.events.clear()
    get_backend.cache_clear()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A redis-server of this test alone, on a port of the resilience range, that the test may stop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None


@pytest.fixture
def private_redis():
    server = RedisServer(18401)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shared_redis(redis_url):
    """A client of the project's Redis (db 5 in CI); keys are flushed by the autouse cache clear."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    yield client
    client.close()
