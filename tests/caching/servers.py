"""Start Django server processes on the caching engineer's ports, bounded and always stopped."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def servers(ports: list[int], *, database_url: str, settings_module: str = "tests.caching.server_settings",
            extra_env: dict | None = None):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url,
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    # Logs go to files: a pipe nobody reads fills up and blocks the server mid-request.
    logs = [tempfile.TemporaryFile() for _ in ports]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.caching.serve_wsgi", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        for port, proc, log in zip(ports, procs, logs, strict=True):
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server on {port} exited: {log.read().decode()[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server on {port} did not start")
                time.sleep(0.2)
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
        for log in logs:
            log.close()
