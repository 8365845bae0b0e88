"""Two real server processes on Redis: one shared limit, exactly; a policy change reaches both within 2 s."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from apps.ratelimit import services
from apps.tenancy.services import token_create
from benchmarks.ratelimit_harness import port
from tests.ratelimit.factories import RateLimitPolicyFactory
from tests.servers import project_servers

PORTS = (port(21), port(22))
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(redis_url, transactional_db):
    with project_servers(list(PORTS), redis_url) as bases:
        yield bases


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


def test_a_policy_changed_or_deleted_through_orm_bulk_admin_or_shell_reaches_a_second_process(
        tenant_a, client, make_member):
    from django.urls import reverse

    from apps.ratelimit.matching import compile_policy
    from tests.policy_watch import PolicyWatcher, assert_every_door_reaches

    orm, bulk, shell = (RateLimitPolicyFactory(tenant=tenant_a, name=name, rate=10) for name in ("orm", "bulk", "shell"))
    client.force_login(make_member(tenant_a, "admin"))
    watcher = PolicyWatcher("ratelimit", tenant_a.pk, connection.settings_dict["NAME"])
    try:
        assert_every_door_reaches(
            watcher, admin=client, changelist=reverse("admin:bulwark_ratelimit_ratelimitpolicy_changelist"),
            served_key=lambda p: p.name, served_value=lambda p: compile_policy(p).limit.capacity,
            orm=orm, bulk=bulk, shell=shell, field="rate", new_value=25,
        )
    finally:
        watcher.stop()
