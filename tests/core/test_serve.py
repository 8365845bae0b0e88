"""The real server command: uvicorn's proxy headers agree with BULWARK_TRUSTED_PROXIES."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import httpx
import pytest
from django.conf import settings
from django.db import connection

from apps.tenancy.services import token_create
from benchmarks.ratelimit_harness import _wait, port
from tests.ratelimit.factories import RateLimitPolicyFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@contextmanager
def serve(*, redis_url: str, trusted_proxies: str):
    db = connection.settings_dict
    web_port = port(53)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url, "LOG_LEVEL": "CRITICAL", "BULWARK_TRUSTED_PROXIES": trusted_proxies,
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(web_port)],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait(web_port, server)
        yield f"http://127.0.0.1:{web_port}"
    finally:
        server.terminate()
        server.wait(timeout=20)


def _statuses(base: str, token: str) -> list[int]:
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
        return [http.get(f"{base}/api/v1/me/", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(6)]


@pytest.mark.parametrize(("trusted_proxies", "allowed"), [("", 3), ("127.0.0.1/32", 6)])
def test_forwarded_for_changes_the_rate_limit_key_only_from_a_trusted_proxy(
        trusted_proxies, allowed, tenant_a, redis_url):
    if connection.vendor != "postgresql":
        pytest.skip("server processes share the test database only on PostgreSQL")
    RateLimitPolicyFactory(tenant=tenant_a, match_kind="any", name="per-ip", key_kind="ip", rate=3)
    _, token = token_create(tenant=tenant_a, name="xff", role="viewer")
    with serve(redis_url=redis_url, trusted_proxies=trusted_proxies) as base:
        statuses = _statuses(base, token)
    assert statuses.count(200) == allowed, statuses
    assert statuses.count(429) == 6 - allowed, statuses
