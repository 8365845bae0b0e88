"""Two real server processes on Redis: one shared limit, exactly; a policy change reaches both within 2 s."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.db import connection

from apps.ratelimit import services
from apps.tenancy.services import token_create
from tests.ratelimit.factories import RateLimitPolicyFactory

ROOT = Path(__file__).resolve().parents[2]
PORTS = (18321, 18322)
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait_ready(port: int, process: subprocess.Popen, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start within {timeout_s} s")


@pytest.fixture
def servers(redis_url, transactional_db):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    if connection.vendor != "postgresql":
        pytest.skip("server processes share the test database only on PostgreSQL")
    processes = []
    try:
        for port in PORTS:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port, process in zip(PORTS, processes, strict=True):
            _wait_ready(port, process)
        yield [f"http://127.0.0.1:{port}" for port in PORTS]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def test_two_processes_share_one_exact_limit_and_see_a_new_policy_within_2_s(servers, tenant_a):
    RateLimitPolicyFactory(tenant=tenant_a, match_kind="any", name="shared", key_kind="token", rate=10)
    _, plaintext = token_create(tenant=tenant_a, name="two-processes", role="viewer")
    headers = {"Authorization": f"Bearer {plaintext}"}

    with httpx.Client(timeout=10, headers=headers) as client:
        def get(i: int) -> int:
            return client.get(f"{servers[i % 2]}/api/v1/me").status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(get, range(40)))
        assert statuses.count(200) == 10 and statuses.count(429) == 30

        services.policy_create(tenant=tenant_a, data={"name": "late", "rate": 1000})
        changed_at = time.monotonic()
        seen_by = {}
        while len(seen_by) < 2 and time.monotonic() - changed_at < 5:
            for base in servers:
                if base not in seen_by and '"late"' in client.get(f"{base}/api/v1/me").headers["RateLimit-Policy"]:
                    seen_by[base] = time.monotonic() - changed_at
            time.sleep(0.05)
    assert set(seen_by) == set(servers)
    assert max(seen_by.values()) < 2.0, seen_by
