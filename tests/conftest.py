"""Shared fixtures. With BULWARK_REQUIRE_SERVICES=1 a missing PostgreSQL or Redis fails the run, never skips."""
from __future__ import annotations

import os

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("BULWARK_REQUIRE_SERVICES") == "1"


def pytest_configure(config) -> None:
    if not REQUIRE_SERVICES:
        return
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL does not point at PostgreSQL")
    if not os.environ.get("REDIS_URL"):
        problems.append("REDIS_URL is not set")
    else:
        import redis

        try:
            redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2).ping()
        except Exception as exc:
            problems.append(f"Redis at REDIS_URL is unreachable: {exc}")
    if problems:
        raise pytest.UsageError("BULWARK_REQUIRE_SERVICES=1 but " + "; ".join(problems))


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        if REQUIRE_SERVICES:
            pytest.fail("REDIS_URL is required")
        pytest.skip("needs Redis (set REDIS_URL)")
    return url


@pytest.fixture(autouse=True, scope="session")
def _no_background_stats_flusher():
    """Tests flush the stats pipeline by hand (`stats.flush_all()`, an app's `stats.flush()`): a background
    flusher would write outside the test's transaction, where the test's rows are not visible (flaky counts)."""
    from apps.core import stats

    stats.pipeline.stop()
    stats.pipeline.background = False
    yield
    stats.pipeline.background = True


@pytest.fixture(autouse=True)
def _clean_shared_state():
    """Each test starts with an empty cache/store and no compiled snapshots left from another test."""
    from django.core.cache import caches

    from apps.core import health, snapshot, stats

    for sink in stats.pipeline.sinks().values():  # what earlier tests buffered must not land in this one's store
        if isinstance(sink, stats.BufferedSink):
            sink.take()
    for alias in settings.CACHES:
        caches[alias].clear()
    for snapshots in snapshot._snapshots.values():
        for compiled in snapshots:
            compiled.clear()
    snapshot._local_versions.clear()
    health._degraded.clear()
    yield
    for sink in stats.pipeline.sinks().values():  # nor reach the exit flush, after the test database is gone
        if isinstance(sink, stats.BufferedSink):
            sink.take()


@pytest.fixture
def tenant_a(db):
    from tests.factories import TenantFactory

    return TenantFactory(slug="tenant-a", name="Tenant A")


@pytest.fixture
def tenant_b(db):
    from tests.factories import TenantFactory

    return TenantFactory(slug="tenant-b", name="Tenant B")


@pytest.fixture
def make_member(db):
    from tests.factories import MembershipFactory

    def make(tenant, role="admin", **kwargs):
        return MembershipFactory(tenant=tenant, role=role, **kwargs).user

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def member_client(make_member):
    """client_for(tenant, role) -> an APIClient signed in as a fresh member with that role."""
    from rest_framework.test import APIClient

    def client_for(tenant, role="admin"):
        client = APIClient()
        client.force_login(make_member(tenant, role))
        client.credentials(HTTP_X_BULWARK_TENANT=tenant.slug)
        return client

    return client_for


@pytest.fixture
def token_client(db):
    """client_for(tenant, role) -> an APIClient carrying a fresh bearer token of that role."""
    from rest_framework.test import APIClient

    from apps.tenancy.services import token_create

    def client_for(tenant, role="admin"):
        _, plaintext = token_create(tenant=tenant, name=f"test-{role}", role=role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        return client

    return client_for
