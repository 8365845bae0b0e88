"""Several real processes sharing breakers through Redis: exact probe grants, propagation, and Redis outages."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from apps.core import health
from apps.resilience.backends.redis import RedisBackend
from apps.resilience.errors import BreakerOpen
from apps.resilience.machine import BreakerConfig, OutcomeBatch
from apps.resilience.runtime import HEALTH_COMPONENT, Breaker, Registry

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.resilience.workers", *args], cwd=ROOT, env=os.environ.copy(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_ready(process: subprocess.Popen) -> None:
    line = process.stdout.readline()
    assert line.strip() == "ready", process.stderr.read()


def finish(process: subprocess.Popen) -> dict:
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=5)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def open_breaker(backend: RedisBackend, config: BreakerConfig, now: float) -> None:
    batch = OutcomeBatch(config)
    for _ in range(max(config.minimum_calls, config.consecutive_failures or 0)):
        batch.add(failed=True, slow=False, now=now)
    assert backend.merge(f"t0:{config.name}", config, batch, now).state == "open"


def test_half_open_grants_exactly_the_permitted_probes_across_processes(redis_url, shared_redis):
    name, start_key = f"probe-{uuid.uuid4().hex[:8]}", f"start-{uuid.uuid4().hex}"
    config = BreakerConfig(name=name, minimum_calls=1, open_duration_s=1.0, half_open_probes=3)
    open_breaker(RedisBackend(client=shared_redis), config, time.time() - 5)  # its open time is already over
    workers = [spawn("probe", name, "20", "3", start_key) for _ in range(5)]
    try:
        for worker in workers:
            wait_ready(worker)
        shared_redis.set(start_key, 1, ex=60)
        granted = [finish(worker)["granted"] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
        shared_redis.delete(start_key)
    assert sum(granted) == 3, granted


def test_a_transition_reaches_every_other_process_within_one_second(redis_url, shared_redis):
    name = f"follow-{uuid.uuid4().hex[:8]}"
    followers = [spawn("follow", name, "15") for _ in range(2)]
    try:
        for follower in followers:
            wait_ready(follower)
        time.sleep(0.3)
        opened_at = time.time()
        open_breaker(RedisBackend(client=shared_redis), BreakerConfig(name=name, consecutive_failures=3,
                                                                      open_duration_s=30.0), opened_at)
        refused = [finish(follower)["refused_at"] for follower in followers]
    finally:
        for follower in followers:
            follower.kill()
    assert all(at is not None for at in refused), refused
    assert all(at - opened_at < 1.0 for at in refused), [at - opened_at for at in refused]


def test_redis_down_falls_back_to_a_local_breaker_and_resyncs_when_it_returns(private_redis, clock, db):
    def client():
        return redis.Redis(port=private_redis.port, socket_timeout=0.5, socket_connect_timeout=0.5)

    registry = Registry(clock=clock, backend=RedisBackend(client=client()))
    registry.background = False
    config = BreakerConfig(name="db", consecutive_failures=3, open_duration_s=30.0)
    breaker = registry.breakers[(0, "db")] = Breaker(tenant_id=0, config=config, registry=registry)

    def failures(n):
        for _ in range(n):
            breaker.record(breaker.acquire(), "failure", duration_s=0.01)

    failures(1)
    registry.flush_all(write_db=False)
    assert breaker.figures.consecutive == 1 and registry.fallback is None

    private_redis.stop()
    failures(3)
    registry.flush_all(write_db=False)
    assert registry.fallback is not None
    assert HEALTH_COMPONENT in health.degraded_components()
    assert health.readiness_report()[1]["status"] == "degraded"
    assert breaker.state == "open"  # the process protects itself on its own
    with pytest.raises(BreakerOpen):
        breaker.acquire()

    private_redis.start()  # a fresh Redis: its shared state is closed, and another process has opened nothing
    clock.advance(1)
    registry.flush_all(write_db=False)
    assert registry.fallback is None
    assert HEALTH_COMPONENT not in health.degraded_components()
    assert breaker.state == "closed"  # the shared state wins again
    breaker.record(breaker.acquire(), "success", duration_s=0.01)

    other = Registry(clock=clock, backend=RedisBackend(client=client()))  # and sharing works again
    other.background = False
    open_breaker(other.backend, config, clock.now())
    clock.advance(1)
    registry.flush_all(write_db=False)
    assert breaker.state == "open"


def test_a_failure_is_merged_when_it_returns_and_the_trip_is_pushed_to_other_processes(shared_redis):
    name = f"push-{uuid.uuid4().hex[:8]}"
    config = BreakerConfig(name=name, consecutive_failures=3, open_duration_s=30.0)
    failing, other = (Registry(backend=RedisBackend(client=shared_redis)) for _ in range(2))
    for registry in (failing, other):
        registry.background = False
        registry.breakers[(0, name)] = Breaker(tenant_id=0, config=config, registry=registry)
    other.start_listener()
    try:
        time.sleep(0.2)  # the listener subscribes
        caller = failing.breakers[(0, name)]
        for _ in range(2):
            caller.record(caller.acquire(), "failure", duration_s=0.01)  # two separate processes' worth: no flush
            caller.pending = OutcomeBatch(config)
        assert caller.state == "closed" and caller.figures.consecutive == 2  # merged when each failure returned
        caller.record(caller.acquire(), "failure", duration_s=0.01)
        assert caller.state == "open"
        watcher = other.breakers[(0, name)]
        deadline = time.monotonic() + 5
        while watcher.state != "open" and time.monotonic() < deadline:
            time.sleep(0.005)
        assert watcher.state == "open"  # without a flush or sync of its own
        with pytest.raises(BreakerOpen):
            watcher.acquire()
    finally:
        other.stop()


@pytest.mark.parametrize(("held", "most_granted"), [(0, 4), (2, 2)])
def test_after_the_first_failure_no_more_calls_start_cluster_wide_than_could_fail(shared_redis, held, most_granted):
    """3 processes, each holding `held` calls in flight, when a 4th process's call fails (fail_max 5: 4 failures
    left), each try 3 more starts. With nothing in flight exactly 4 start. With 2 each in flight, each process
    counts its own into the gate, so at most 4 - 2 = 2 start (the first process to ask knows only its own
    two); without the count 4 would. Then the held calls fail and open the breaker."""
    name, go_key, release_key = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("gate", "go", "release"))
    workers = [spawn("hold", name, str(held), "3", go_key, release_key) for _ in range(3)]
    registry = Registry(backend=RedisBackend(client=shared_redis))
    registry.background = False
    config = BreakerConfig(name=name, consecutive_failures=5, open_duration_s=30.0)
    failing = registry.breakers[(0, name)] = Breaker(tenant_id=0, config=config, registry=registry)
    try:
        for worker in workers:
            wait_ready(worker)
        failing.record(failing.acquire(), "failure", duration_s=0.01)
        assert failing.gated
        shared_redis.set(go_key, 1, ex=60)
        granted = [json.loads(worker.stdout.readline())["granted"] for worker in workers]
        shared_redis.set(release_key, 1, ex=60)
        results = [finish(worker) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
        shared_redis.delete(go_key, release_key)
    if held:
        assert sum(granted) <= most_granted, granted
        assert failing.sync().state == "open"  # 1 + 6 held failures
        assert any(result["state"] == "open" for result in results), results
    else:
        assert sum(granted) == most_granted, granted


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["breaker", "retry"])
def test_a_policy_changed_or_deleted_through_orm_bulk_admin_or_shell_reaches_a_second_process(
        kind, tenant_a, client, make_member):
    """The bug of issue 14: resilience refreshed its snapshot only from its own services, so the admin's bulk
    delete and every ORM or shell save left other processes on a deleted or stale policy."""
    from django.db import connection
    from django.urls import reverse

    from tests.policy_watch import PolicyWatcher, assert_every_door_reaches
    from tests.resilience.factories import BreakerPolicyFactory, RetryPolicyFactory

    if connection.vendor != "postgresql":
        pytest.skip("the watching process shares the test database only on PostgreSQL")
    if kind == "breaker":
        make, field, new_value, bulk_change = BreakerPolicyFactory, "forced_state", "disabled", ("force_open",
                                                                                                "forced_open")
    else:
        make, field, new_value, bulk_change = RetryPolicyFactory, "max_attempts", 5, None
    orm, bulk, shell = (make(tenant=tenant_a, name=name) for name in ("orm", "bulk", "shell"))
    client.force_login(make_member(tenant_a, "admin"))
    watcher = PolicyWatcher("resilience", tenant_a.pk, connection.settings_dict["NAME"])
    try:
        assert_every_door_reaches(
            watcher, admin=client, changelist=reverse(f"admin:bulwark_resilience_{kind}policy_changelist"),
            served_key=lambda p: f"{kind}:{p.name}", served_value=lambda p: getattr(p, field),
            orm=orm, bulk=bulk, shell=shell, field=field, new_value=new_value, bulk_change=bulk_change,
        )
    finally:
        watcher.stop()
