"""A compiled snapshot that follows a model: saves and deletes from any door bump its version after commit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from operator import attrgetter
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test import RequestFactory

from apps.core.audited import BulkWriteRefused, is_audited
from apps.core.clock import FakeClock
from apps.core.snapshot import CompiledSnapshot, read_version
from apps.tenancy.models import Membership
from tests.factories import MembershipFactory, TenantFactory

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_NAME = "core.follow-test"


def memberships_of(tenant_id) -> list[list[str]]:
    return sorted([user, role] for user, role in
                  Membership.objects.filter(tenant_id=tenant_id).values_list("user__username", "role"))


@pytest.fixture
def followed():
    snapshot = CompiledSnapshot(SNAPSHOT_NAME, memberships_of)
    snapshot.follow(Membership, key=attrgetter("tenant_id"))
    yield snapshot
    snapshot.unfollow(Membership)


@pytest.mark.django_db
def test_a_save_bumps_the_version_only_when_it_commits(followed, django_capture_on_commit_callbacks):
    membership = MembershipFactory(role="viewer")
    tenant_id = membership.tenant_id
    before = read_version(SNAPSHOT_NAME, tenant_id)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        membership.role = "operator"
        membership.save()
        assert read_version(SNAPSHOT_NAME, tenant_id) == before  # not before the commit
    assert callbacks
    assert read_version(SNAPSHOT_NAME, tenant_id) == before + 1


@pytest.mark.django_db
def test_a_rolled_back_save_bumps_nothing(followed, django_capture_on_commit_callbacks):
    membership = MembershipFactory(role="viewer")
    before = read_version(SNAPSHOT_NAME, membership.tenant_id)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        membership.role = "operator"
        membership.save()
        raise RuntimeError("rolled back")
    assert read_version(SNAPSHOT_NAME, membership.tenant_id) == before


@pytest.mark.django_db
def test_the_admins_bulk_delete_bumps_every_tenant_it_touched(followed, django_capture_on_commit_callbacks):
    first, second, untouched = MembershipFactory(), MembershipFactory(), MembershipFactory()
    tenants = [first.tenant_id, second.tenant_id, untouched.tenant_id]
    before = [read_version(SNAPSHOT_NAME, t) for t in tenants]
    request = RequestFactory().post("/admin/")
    with django_capture_on_commit_callbacks(execute=True):
        admin.ModelAdmin(Membership, admin.site).delete_queryset(
            request, Membership.objects.filter(pk__in=[first.pk, second.pk]))
    after = [read_version(SNAPSHOT_NAME, t) for t in tenants]
    assert after == [before[0] + 1, before[1] + 1, before[2]]


@pytest.mark.django_db
def test_moving_an_object_to_another_key_bumps_both(followed, django_capture_on_commit_callbacks):
    membership = MembershipFactory()
    old_tenant, new_tenant = membership.tenant, TenantFactory()
    before = read_version(SNAPSHOT_NAME, old_tenant.pk), read_version(SNAPSHOT_NAME, new_tenant.pk)
    with django_capture_on_commit_callbacks(execute=True):
        membership.tenant = new_tenant
        membership.save()
    assert (read_version(SNAPSHOT_NAME, old_tenant.pk), read_version(SNAPSHOT_NAME, new_tenant.pk)) == (
        before[0] + 1, before[1] + 1)


@pytest.mark.django_db
def test_this_process_serves_the_change_at_once(followed, django_capture_on_commit_callbacks):
    membership = MembershipFactory(role="viewer")
    assert followed.get(membership.tenant_id) == [[membership.user.username, "viewer"]]
    with django_capture_on_commit_callbacks(execute=True):
        membership.role = "admin"
        membership.save()
    assert followed.get(membership.tenant_id) == [[membership.user.username, "admin"]]


@pytest.mark.django_db
def test_the_snapshot_reads_time_from_its_injected_clock(django_capture_on_commit_callbacks):
    """Another process's bump is noticed only once SNAPSHOT_CHECK_INTERVAL_S has passed on the clock."""
    from apps.core import snapshot as snapshot_module

    clock = FakeClock()
    builds = []
    compiled = CompiledSnapshot("core.clock-test", lambda key: builds.append(key) or len(builds), clock=clock)
    assert compiled.get("k") == 1
    client = snapshot_module.redis_client()
    version_key = snapshot_module._version_key("core.clock-test", "k")
    if client is not None:
        client.incr(version_key)  # as another process's bump: this process's copy is not dropped
    else:
        snapshot_module._local_versions[version_key] = snapshot_module._local_versions.get(version_key, 0) + 1
    clock.advance(0.5)
    assert compiled.get("k") == 1
    clock.advance(0.5)
    assert compiled.get("k") == 2


POLICY_MODELS = [
    "bulwark_ratelimit.RateLimitPolicy",
    "bulwark_caching.CachePolicy",
    "bulwark_resilience.BreakerPolicy",
    "bulwark_resilience.RetryPolicy",
]


@pytest.mark.parametrize("label", POLICY_MODELS)
def test_policies_refuse_queryset_update_which_no_signal_would_follow(label):
    from django.apps import apps

    model = apps.get_model(label)
    assert is_audited(model)
    with pytest.raises(BulkWriteRefused):
        model.objects.update(name="renamed")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_change_through_the_orm_or_the_bulk_admin_reaches_a_second_process_within_2_s(followed):
    membership = MembershipFactory(role="viewer")
    username = membership.user.username
    env = {**os.environ, "BULWARK_TEST_DB_NAME": connection.settings_dict["NAME"]}
    worker = subprocess.Popen([sys.executable, "-m", "tests.core.follow_worker", str(membership.tenant_id), "30"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def next_seen() -> dict:
        line = worker.stdout.readline()
        assert line, worker.stderr.read() if worker.poll() is not None else "worker stopped printing"
        return json.loads(line)

    try:
        assert next_seen()["value"] == [[username, "viewer"]]

        membership.role = "operator"
        membership.save()  # autocommit: the ORM door
        changed_at = time.time()
        seen = next_seen()
        assert seen["value"] == [[username, "operator"]]
        assert seen["at"] - changed_at < 2.0

        admin.ModelAdmin(Membership, admin.site).delete_queryset(
            RequestFactory().post("/admin/"), Membership.objects.filter(tenant_id=membership.tenant_id))
        changed_at = time.time()
        seen = next_seen()
        assert seen["value"] == []
        assert seen["at"] - changed_at < 2.0
    finally:
        worker.kill()
        worker.communicate(timeout=10)


def test_with_the_store_down_the_snapshot_serves_its_last_copy_and_probes_once_per_interval(monkeypatch):
    import socket

    import redis

    from apps.core import health
    from apps.core import snapshot as snapshot_module

    clock = FakeClock()
    builds = []
    compiled = CompiledSnapshot("core.outage-test", lambda key: builds.append(key) or len(builds), clock=clock)
    assert compiled.get("k") == 1
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        dead = redis.Redis(host="127.0.0.1", port=closed.getsockname()[1], socket_connect_timeout=0.2)
        attempts = []
        monkeypatch.setattr(dead, "get", lambda *a: attempts.append(a) or redis.Redis.get(dead, *a))
        monkeypatch.setattr(snapshot_module, "redis_client", lambda: dead)
        clock.advance(1.0)
        assert compiled.get("k") == 1
        assert compiled.get("other") == 2  # built without asking the dead store
        assert len(attempts) == 1
        assert "snapshot:core.outage-test" in health.degraded_components()
    monkeypatch.undo()
    clock.advance(1.0)
    assert compiled.get("k") == 1  # the store is back, the version unchanged: the copy stays
    assert "snapshot:core.outage-test" not in health.degraded_components()
