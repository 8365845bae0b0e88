"""Start Django server processes on the caching engineer's ports, bounded and always stopped."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _wait_until_up(port: int, proc: subprocess.Popen, log, deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server on {port} exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on {port} did not start")
        time.sleep(0.2)


@contextmanager
def servers(ports: list[int], *, database_url: str, settings_module: str = "tests.caching.server_settings"):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url,
           "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []
    with ExitStack() as stack:
        # Logs go to files: a pipe nobody reads fills up and blocks the server mid-request.
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in ports]
        try:
            for port, log in zip(ports, logs, strict=True):
                procs.append(subprocess.Popen([sys.executable, "-m", "tests.caching.serve_wsgi", str(port)],
                                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log))
            deadline = time.monotonic() + 60
            for port, proc, log in zip(ports, procs, logs, strict=True):
                _wait_until_up(port, proc, log, deadline)
            yield [f"http://127.0.0.1:{port}" for port in ports]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
