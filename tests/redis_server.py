"""A redis-server of one test alone, which the test stops and starts again to play a store outage."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """`redis-server` without persistence on 127.0.0.1:`port`. Without the binary the test skips, or fails
    when the real services are required (CI)."""

    def __init__(self, port: int) -> None:
        if shutil.which("redis-server") is None:
            if os.environ.get("BULWARK_REQUIRE_SERVICES") == "1":
                pytest.fail("the store-outage tests need the redis-server binary")
            pytest.skip("needs the redis-server binary")
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if _port_open(self.port):
            # Stopping a server that is not ours would be worse than failing.
            raise RuntimeError(f"port {self.port} is taken")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if time.monotonic() > deadline:
                self.stop()
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
