"""Rate-limit fixtures: a fake clock, both backends, and a private redis-server that tests may stop."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from apps.ratelimit import services
from benchmarks.ratelimit_harness import port
from tests.conftest import REQUIRE_SERVICES

T0_US = 28_333_334 * 60_000_000  # a whole minute (2023-11-14 22:14 UTC): window arithmetic stays readable


class FakeClock:
    def __init__(self, now_us: int = T0_US) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, *, s: float = 0, us: int = 0) -> None:
        self.now_us += int(s * 1_000_000) + us


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_ratelimit_state():
    """A new backend (memory state included) and no pending stats from another test."""
    services._backend = None
    services.stats_counters.take()
    yield
    services._backend = None
    services.stats_counters.take()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A redis-server of this test alone, on a port of the rate-limit range, that it can stop and restart."""

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
def own_redis():
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("the store-outage tests need the redis-server binary")
        pytest.skip("needs the redis-server binary")
    server = RedisServer(port(10))
    server.start()
    try:
        yield server
    finally:
        server.stop()
