"""The process runtime: no store round trip on the closed path, batched merges, forced states, events, fallback."""
from __future__ import annotations

import pytest

from apps.resilience import services
from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.decorators import breaker
from apps.resilience.errors import BreakerOpen, BulkheadFull
from apps.resilience.models import BreakerEvent, DependencyMinute
from apps.resilience.runtime import Registry, get_breaker
from tests.resilience.factories import BreakerPolicyFactory


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def merge(self, *args, **kwargs):
        self.calls.append("merge")
        return super().merge(*args, **kwargs)

    def read(self, *args, **kwargs):
        self.calls.append("read")
        return super().read(*args, **kwargs)

    def acquire_probe(self, *args, **kwargs):
        self.calls.append("probe")
        return super().acquire_probe(*args, **kwargs)


class Boom(Exception):
    pass


class NotFound(Exception):
    pass


def call(name, exc=None, *, tenant=None, clock=None, duration_s=0.0):
    """One call through the breaker; the fake clock moves by `duration_s` during it."""
    with breaker(name, tenant=tenant):
        if clock is not None:
            clock.advance(duration_s)
        if exc is not None:
            raise exc


def fail(name, n, **kwargs):
    for _ in range(n):
        with pytest.raises(Boom):
            call(name, Boom(), **kwargs)


@pytest.fixture
def policy(db, tenant_a):
    return BreakerPolicyFactory(tenant=tenant_a, name="payments", window_size=10, minimum_calls=4,
                                failure_rate_threshold_pct=50, open_duration_s=10,
                                ignored_exceptions=["tests.resilience.test_runtime.NotFound"])


def test_closed_path_makes_no_store_call_until_the_flush(fresh_registry, policy, tenant_a):
    backend = CountingBackend()
    fresh_registry._backend = backend
    for _ in range(100):
        call("payments", tenant=tenant_a)
    assert backend.calls == []
    fresh_registry.flush_all()
    assert backend.calls == ["merge"]
    assert get_breaker("payments", tenant_a).figures.calls == 10


def test_failures_open_the_breaker_when_they_return_and_calls_are_then_refused(fresh_registry, policy, tenant_a, clock):
    fail("payments", 1, tenant=tenant_a)
    for _ in range(3):
        call("payments", tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).state == "closed"
    fail("payments", 2, tenant=tenant_a)  # each failure is merged as it returns: 3 of 6 opens at once
    with pytest.raises(BreakerOpen) as refused:
        call("payments", tenant=tenant_a)
    assert refused.value.state == "open" and refused.value.retry_after_s == pytest.approx(10)
    fresh_registry.flush_all()
    event = BreakerEvent.objects.get(tenant=tenant_a, name="payments")
    assert (event.from_state, event.to_state, event.calls, event.failures) == ("closed", "open", 6, 3)
    assert event.failure_rate_pct == pytest.approx(50.0)


def test_half_open_admits_one_probe_and_its_success_closes(fresh_registry, policy, tenant_a, clock):
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    clock.advance(10)
    with breaker("payments", tenant=tenant_a):
        with pytest.raises(BreakerOpen) as refused:  # the one ticket is out
            call("payments", tenant=tenant_a)
        assert refused.value.state == "half_open"
    assert get_breaker("payments", tenant_a).state == "closed"
    call("payments", tenant=tenant_a)
    fresh_registry.flush_all()
    transitions = list(BreakerEvent.objects.filter(name="payments").order_by("id").values_list("to_state", flat=True))
    assert transitions == ["open", "half_open", "closed"]


def test_half_open_probe_failure_opens_again(fresh_registry, policy, tenant_a, clock):
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    clock.advance(10)
    fail("payments", 1, tenant=tenant_a)
    with pytest.raises(BreakerOpen):
        call("payments", tenant=tenant_a)
    assert get_breaker("payments", tenant_a).state == "open"


def test_ignored_exceptions_count_neither_way(fresh_registry, policy, tenant_a):
    for _ in range(10):
        with pytest.raises(NotFound):
            call("payments", NotFound(), tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).figures.calls == 0


def test_exceptions_outside_the_failure_list_count_as_successes(fresh_registry, db, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="strict", minimum_calls=2,
                         failure_exceptions=["tests.resilience.test_runtime.Boom"])
    for _ in range(3):
        with pytest.raises(KeyError):
            call("strict", KeyError("x"), tenant=tenant_a)
    fresh_registry.flush_all()
    breaker_ = get_breaker("strict", tenant_a)
    assert breaker_.state == "closed" and breaker_.figures.calls == 3 and breaker_.figures.failures == 0


def test_slow_calls_are_measured_and_can_open(fresh_registry, db, tenant_a, clock):
    BreakerPolicyFactory(tenant=tenant_a, name="slowdep", window_size=10, minimum_calls=4,
                         slow_call_duration_ms=500, slow_call_rate_threshold_pct=50)
    call("slowdep", tenant=tenant_a, clock=clock, duration_s=0.1)
    call("slowdep", tenant=tenant_a, clock=clock, duration_s=0.1)
    call("slowdep", tenant=tenant_a, clock=clock, duration_s=0.6)
    call("slowdep", tenant=tenant_a, clock=clock, duration_s=2.0)
    fresh_registry.flush_all()
    event = BreakerEvent.objects.get(name="slowdep")
    assert event.slow_calls == 2 and "slow-call rate" in event.reason


def test_forced_open_rejects_without_asking_the_store(fresh_registry, policy, tenant_a, committed):
    backend = CountingBackend()
    fresh_registry._backend = backend
    committed(services.breaker_force, policy=policy, forced_state="forced_open")
    with pytest.raises(BreakerOpen) as refused:
        call("payments", tenant=tenant_a)
    assert refused.value.state == "forced_open" and backend.calls == []


def test_forced_closed_permits_while_the_shared_state_is_open(fresh_registry, policy, tenant_a, committed):
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    committed(services.breaker_force, policy=policy, forced_state="forced_closed")
    call("payments", tenant=tenant_a)
    assert get_breaker("payments", tenant_a).state == "open"


def test_disabled_passes_through_and_counts_nothing(fresh_registry, policy, tenant_a, committed):
    committed(services.breaker_force, policy=policy, forced_state="disabled")
    fail("payments", 10, tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).figures.calls == 0
    assert not DependencyMinute.objects.filter(name="payments").exists()


def test_metrics_only_counts_but_never_transitions_nor_rejects(fresh_registry, policy, tenant_a, committed):
    committed(services.breaker_force, policy=policy, forced_state="metrics_only")
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    breaker_ = get_breaker("payments", tenant_a)
    assert breaker_.state == "closed" and breaker_.figures.failures == 4  # it would be open: it keeps counting
    fail("payments", 6, tenant=tenant_a)
    call("payments", tenant=tenant_a)
    fresh_registry.flush_all()
    assert breaker_.state == "closed" and breaker_.figures.calls == 10 and breaker_.figures.failures == 9
    assert not BreakerEvent.objects.filter(name="payments", to_state="open").exists()


def test_reset_closes_for_everyone_and_returns_to_automatic(fresh_registry, policy, tenant_a, committed):
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    committed(services.breaker_force, policy=policy, forced_state="forced_open")
    committed(services.breaker_reset, policy=policy)
    call("payments", tenant=tenant_a)
    assert get_breaker("payments", tenant_a).state == "closed"


def test_policy_changes_apply_without_a_restart(fresh_registry, policy, tenant_a, committed):
    fail("payments", 3, tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).state == "closed"  # 3 < minimum 4
    committed(services.policy_update, policy=policy, data={"minimum_calls": 1, "failure_rate_threshold_pct": 10})
    fail("payments", 1, tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).state == "open"


def test_scorecard_rows_hold_counts_latency_quantiles_and_cost(fresh_registry, policy, tenant_a, clock):
    breaker_ = get_breaker("payments", tenant_a)
    for ms in [10] * 10 + [200] * 9:
        permit = breaker_.acquire()
        breaker_.record(permit, "success", duration_s=ms / 1000, cost=0.5)
    permit = breaker_.acquire()
    breaker_.record(permit, "failure", duration_s=0.01)
    fresh_registry.flush_all()
    from apps.resilience.selectors import dependency_scorecard

    card = dependency_scorecard(tenant=tenant_a, name="payments", minutes=10**7)
    total = card["total"]
    assert (total["calls"], total["failures"]) == (20, 1)
    assert total["p50_ms"] == pytest.approx(10, rel=0.02)
    assert total["p95_ms"] == pytest.approx(200, rel=0.02)
    assert total["cost_per_call"] == pytest.approx(0.5)


def test_rejections_are_counted_in_the_scorecard(fresh_registry, policy, tenant_a, committed):
    committed(services.breaker_force, policy=policy, forced_state="forced_open")
    for _ in range(3):
        with pytest.raises(BreakerOpen):
            call("payments", tenant=tenant_a)
    fresh_registry.flush_all()
    assert DependencyMinute.objects.get(name="payments").rejected == 3


def test_process_bulkhead_refuses_beyond_the_limit(fresh_registry, db, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="narrow", max_concurrent=2)
    with breaker("narrow", tenant=tenant_a), breaker("narrow", tenant=tenant_a), pytest.raises(BulkheadFull):
        call("narrow", tenant=tenant_a)
    call("narrow", tenant=tenant_a)  # slots were given back


def test_cluster_bulkhead_is_shared_by_processes(fresh_registry, db, tenant_a, clock):
    BreakerPolicyFactory(tenant=tenant_a, name="narrow", max_concurrent=1, bulkhead_scope="cluster")
    other = Registry(clock=clock, backend=fresh_registry.backend)  # a second process on the same store
    other.background = False
    with breaker("narrow", tenant=tenant_a), pytest.raises(BulkheadFull):
        other.get("narrow", tenant_a).acquire()
    other.get("narrow", tenant_a).acquire()


def test_a_breaker_without_policy_uses_the_defaults(fresh_registry):
    call("unconfigured")
    assert get_breaker("unconfigured").config.failure_rate_threshold_pct == 50


def test_a_transition_reaches_another_process_at_its_next_sync(fresh_registry, policy, tenant_a, clock):
    other = Registry(clock=clock, backend=fresh_registry.backend)
    other.background = False
    assert other.get("payments", tenant_a).state == "closed"
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    clock.advance(0.5)
    other.flush_all(write_db=False)
    with pytest.raises(BreakerOpen):
        other.get("payments", tenant_a).acquire()


def test_a_process_whose_own_calls_trip_stops_calling_before_the_flush(fresh_registry, db, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="api", consecutive_failures=3, open_duration_s=30)
    fail("api", 3, tenant=tenant_a)
    with pytest.raises(BreakerOpen):
        call("api", tenant=tenant_a)
    fresh_registry.flush_all()
    assert BreakerEvent.objects.filter(name="api", to_state="open").count() == 1


def test_entering_metrics_only_resets_the_figures_and_closes(fresh_registry, policy, tenant_a, committed, clock):
    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all()
    assert get_breaker("payments", tenant_a).state == "open"
    committed(services.breaker_force, policy=policy, forced_state="metrics_only")
    breaker_ = get_breaker("payments", tenant_a)
    assert breaker_.state == "closed" and breaker_.figures.calls == 0
    call("payments", tenant=tenant_a)  # never refused
    fresh_registry.flush_all()
    assert breaker_.figures.calls == 1
    assert BreakerEvent.objects.filter(name="payments", reason="entering metrics only").exists()


def test_history_of_a_deleted_tenant_is_dropped_not_retried(fresh_registry, db):
    gone = 987_654  # a tenant id that no longer exists
    fail("payments", 10, tenant=gone)
    fresh_registry.flush_all()
    assert get_breaker("payments", gone).state == "open"
    assert fresh_registry.events == []
    assert not BreakerEvent.objects.exists()


def test_a_forked_worker_starts_its_own_flusher(fresh_registry):
    import os

    fresh_registry.background = True
    get_breaker("forked")
    try:
        assert fresh_registry._thread is not None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the inherited thread object is gone, the next lookup starts a new one
            ok = fresh_registry._thread is None
            get_breaker("forked")
            ok = ok and fresh_registry._thread is not None and fresh_registry._thread.is_alive()
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.close(write)
        try:
            assert os.read(read, 1) == b"1"
        finally:
            os.close(read)
            os.waitpid(pid, 0)
    finally:
        fresh_registry.stop()
        fresh_registry.background = False
    assert fresh_registry._thread is None


def test_a_failed_database_write_keeps_the_history_for_the_next_one(fresh_registry, policy, tenant_a, monkeypatch):
    from apps.resilience import stats

    fail("payments", 4, tenant=tenant_a)
    fresh_registry.flush_all(write_db=False)

    def database_down(rows):
        raise ConnectionError("database unavailable")

    monkeypatch.setattr(stats, "write_minutes", database_down)
    with pytest.raises(ConnectionError):
        fresh_registry.write_db()
    monkeypatch.undo()
    fresh_registry.write_db()
    assert BreakerEvent.objects.filter(name="payments", to_state="open").count() == 1
    assert DependencyMinute.objects.get(name="payments").failures == 4


def test_a_breaker_keeps_judging_when_its_policies_cannot_be_read(fresh_registry, db, tenant_a, monkeypatch):
    from django.db import OperationalError

    from apps.core import health
    from apps.resilience import runtime

    BreakerPolicyFactory(tenant=tenant_a, name="database", consecutive_failures=2, open_duration_s=30)
    assert get_breaker("database", tenant_a).config.consecutive_failures == 2

    def database_down(tenant_id):
        raise OperationalError("connection refused")

    runtime.policy_snapshot.clear()
    monkeypatch.setattr(runtime.policy_snapshot, "build", database_down)
    fail("database", 2, tenant=tenant_a)  # the breaker protecting the database still works
    with pytest.raises(BreakerOpen):
        call("database", tenant=tenant_a)
    assert "resilience:policies" in health.degraded_components()
    call("unknown-yet", tenant=tenant_a)  # a breaker first met now gets the defaults
