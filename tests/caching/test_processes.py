"""Several real server processes sharing Redis: one origin call per stampede, one refresh per stale key,
and invalidation (by tag and by a model save) that every process sees at once."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from apps.caching import services
from apps.core.store import redis_client, store_key
from apps.tenancy.services import token_create
from benchmarks.ratelimit_harness import port
from tests.caching.factories import CachePolicyFactory
from tests.caching.servers import servers
from tests.factories import TenantFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PORTS = [port(221), port(222)]


@pytest.fixture
def cluster(redis_url):
    if connection.vendor != "postgresql":
        pytest.skip("server processes share the test database only on PostgreSQL")
    params = connection.settings_dict
    database_url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    with servers(PORTS, database_url=database_url) as urls:
        yield urls


@pytest.fixture
def tenant_token(db):
    tenant = TenantFactory(slug="acme-proc")
    _, plaintext = token_create(tenant=tenant, name="proc", role="viewer")
    # Behind a load balancer every process sees the same public host (the host is part of the key).
    return tenant, {"Authorization": f"Bearer {plaintext}", "Host": "localhost"}


def origin_calls(name: str) -> int:
    return int(redis_client().get(store_key("test-origin-calls", name)) or 0)


def fire(urls: list[str], path: str, headers: dict, n: int) -> list[httpx.Response]:
    def one(i: int) -> httpx.Response:
        return httpx.get(urls[i % len(urls)] + path, headers=headers, timeout=20)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_misses_across_processes_call_the_origin_once(cluster, tenant_token):
    tenant, headers = tenant_token
    CachePolicyFactory(tenant=tenant, path_pattern="^/slow/", ttl_s=60, vary_on="tenant")
    responses = fire(cluster, "/slow/stampede/?ms=400", headers, 30)
    assert [r.status_code for r in responses] == [200] * 30
    assert origin_calls("stampede") == 1
    assert {r.json()["call"] for r in responses} == {1}
    statuses = [r.headers["Cache-Status"] for r in responses]
    assert sum("stored" in s for s in statuses) == 1
    assert all(s.startswith("Bulwark; hit") for s in statuses if "stored" not in s)


def test_stale_key_is_refreshed_once_across_processes(cluster, tenant_token):
    tenant, headers = tenant_token
    # The TTL outlives the burst on a loaded machine, so the refreshed entry cannot go stale again in it.
    CachePolicyFactory(tenant=tenant, path_pattern="^/slow/", ttl_s=5, stale_while_revalidate_s=60,
                       vary_on="tenant")
    httpx.get(cluster[0] + "/slow/swr/?ms=300", headers=headers, timeout=20)
    time.sleep(5.1)
    responses = fire(cluster, "/slow/swr/?ms=300", headers, 20)
    # Nobody waited for the origin: the stale copy (or, late comers, the refreshed one) came from the cache.
    statuses = [r.headers["Cache-Status"] for r in responses]
    assert all(s.startswith("Bulwark; hit") for s in statuses), statuses
    assert any(r.json()["call"] == 1 for r in responses)
    deadline = time.monotonic() + 10  # let the one background refresh finish, however loaded the machine
    while origin_calls("swr") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert origin_calls("swr") == 2, statuses
    fresh = httpx.get(cluster[1] + "/slow/swr/?ms=300", headers=headers, timeout=20)
    assert fresh.json()["call"] == 2


def test_invalidation_from_another_process_is_seen_at_once(cluster, tenant_token):
    tenant, headers = tenant_token
    CachePolicyFactory(tenant=tenant, path_pattern="^/slow/", tags=["slow:{name}", "profile"], vary_on="tenant",
                       invalidate_on_models=["bulwark_tenancy.Tenant"])
    for url in cluster:
        httpx.get(url + "/slow/tagged/?ms=0", headers=headers, timeout=20)
    assert origin_calls("tagged") == 1
    services.invalidate(tags=["slow:tagged"], tenant=tenant)
    after = httpx.get(cluster[1] + "/slow/tagged/?ms=0", headers=headers, timeout=20)
    assert after.headers["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert origin_calls("tagged") == 2
    assert httpx.get(cluster[0] + "/slow/tagged/?ms=0", headers=headers, timeout=20).json()["call"] == 2
    # A save of a watched model in this process retires the entries in both server processes.
    tenant.name = "Renamed"
    tenant.save()
    assert httpx.get(cluster[0] + "/slow/tagged/?ms=0", headers=headers, timeout=20).json()["call"] == 3


def test_a_policy_changed_or_deleted_through_orm_bulk_admin_or_shell_reaches_a_second_process(
        tenant_a, client, make_member):
    from django.urls import reverse

    from tests.policy_watch import PolicyWatcher, assert_every_door_reaches

    orm, bulk, shell = (CachePolicyFactory(tenant=tenant_a, name=name, ttl_s=60) for name in ("orm", "bulk", "shell"))
    client.force_login(make_member(tenant_a, "admin"))
    watcher = PolicyWatcher("caching", tenant_a.pk, connection.settings_dict["NAME"])
    try:
        assert_every_door_reaches(
            watcher, admin=client, changelist=reverse("admin:bulwark_caching_cachepolicy_changelist"),
            served_key=lambda p: p.name, served_value=lambda p: p.ttl_s,
            orm=orm, bulk=bulk, shell=shell, field="ttl_s", new_value=90,
        )
    finally:
        watcher.stop()
