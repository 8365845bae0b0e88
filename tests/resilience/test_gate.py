"""The failure budget in one process: the gate counts calls in flight, waits for them, and lifts; its arithmetic."""
from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import threading

import pytest

from apps.resilience import services
from apps.resilience.errors import BreakerOpen
from apps.resilience.machine import BreakerConfig, BreakerRecord, OutcomeBatch, failures_to_open, merge
from apps.resilience.runtime import get_breaker
from tests.resilience.factories import BreakerPolicyFactory
from tests.resilience.test_runtime import CountingBackend


@pytest.fixture
def api(db, tenant_a):
    """A breaker opening after 3 failures in a row."""
    BreakerPolicyFactory(tenant=tenant_a, name="api", consecutive_failures=3, open_duration_s=30)
    return get_breaker("api", tenant_a)


@pytest.fixture
def no_wait(settings):
    settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"ADMISSION_WAIT_S": 0}}


def test_calls_in_flight_when_the_first_failure_returns_hold_further_starts(api, fresh_registry, no_wait):
    permits = [api.acquire() for _ in range(4)]  # 4 calls in flight, started while healthy
    assert len(api.in_flight) == 4
    api.record(permits.pop(), "failure", duration_s=0.01)
    assert api.state == "closed" and api.gated  # 2 more failures would open it, and 3 calls are still out
    with pytest.raises(BreakerOpen) as refused:
        api.acquire()
    assert refused.value.state == "closed" and "failure budget" in str(refused.value)
    api.record(permits.pop(), "failure", duration_s=0.01)  # 1 left, 2 out
    with pytest.raises(BreakerOpen):
        api.acquire()
    api.record(permits.pop(), "success", duration_s=0.01)  # no failure in a row any more: the gate lifts
    assert not api.gated
    permit = api.acquire()
    assert permit.gate is None and permit.free


def test_the_in_flight_calls_failing_open_the_breaker_and_nothing_else_started(api, fresh_registry, no_wait):
    permits = [api.acquire() for _ in range(5)]
    refused = 0
    for permit in permits:
        api.record(permit, "failure", duration_s=0.01)
        try:
            api.record(api.acquire(), "failure", duration_s=0.01)
        except BreakerOpen:
            refused += 1
    assert api.state == "open" and refused == 5  # every start after the first failure was held


def test_with_nothing_in_flight_the_gate_grants_exactly_the_budget(api, fresh_registry, no_wait):
    api.record(api.acquire(), "failure", duration_s=0.01)
    granted = []
    for _ in range(5):
        with contextlib.suppress(BreakerOpen):
            granted.append(api.acquire())
    assert [permit.gate is not None for permit in granted] == [True, True]
    api.record(granted[0], "ignored", duration_s=0.01)  # its share of the budget comes back
    assert api.acquire().gate is not None


def test_a_gated_start_waits_for_a_call_in_flight_to_return(api, fresh_registry, settings):
    settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"ADMISSION_WAIT_S": 30}}
    permits = [api.acquire() for _ in range(3)]
    api.record(permits.pop(), "failure", duration_s=0.01)
    started = []
    waiter = threading.Thread(target=lambda: started.append(api.acquire()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not started  # waiting: 2 calls out, 2 failures left
    api.record(permits.pop(), "success", duration_s=0.01)  # wakes it: the gate lifted
    waiter.join(10)
    assert not waiter.is_alive() and started[0].free


def test_a_coroutine_waits_for_the_budget_without_blocking_its_loop(api, fresh_registry, settings):
    settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"ADMISSION_WAIT_S": 30}}
    permits = [api.acquire() for _ in range(3)]
    api.record(permits.pop(), "failure", duration_s=0.01)

    async def scenario():
        waiting = asyncio.ensure_future(api.aacquire())
        await asyncio.sleep(0.25)
        assert not waiting.done()
        api.record(permits.pop(), "success", duration_s=0.01)  # the loop ran this: it was not blocked
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(scenario()).free


def test_a_coroutine_is_refused_once_its_wait_runs_out(api, fresh_registry, settings):
    settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"ADMISSION_WAIT_S": 0.2, "FLUSH_INTERVAL_S": 0.05}}
    permits = [api.acquire() for _ in range(3)]
    api.record(permits.pop(), "failure", duration_s=0.01)
    with pytest.raises(BreakerOpen) as refused:
        asyncio.run(api.aacquire())
    assert refused.value.state == "closed"


def test_the_healthy_path_still_makes_no_store_call_and_the_gated_one_reports_every_outcome(
        db, tenant_a, fresh_registry, no_wait):
    backend = CountingBackend()
    fresh_registry._backend = backend
    BreakerPolicyFactory(tenant=tenant_a, name="api", consecutive_failures=3, open_duration_s=30)
    runtime = get_breaker("api", tenant_a)
    for _ in range(50):
        runtime.record(runtime.acquire(), "success", duration_s=0.0)
    assert backend.calls == [] and len(runtime.in_flight) == 0
    runtime.record(runtime.acquire(), "failure", duration_s=0.0)
    assert backend.calls == ["merge"] and runtime.gated
    runtime.record(runtime.acquire(), "success", duration_s=0.0)  # a gated start, and its outcome at once
    assert backend.calls == ["merge", "merge"] and not runtime.gated


def test_the_decision_api_hands_out_gate_tickets_and_takes_them_back(api, fresh_registry, tenant_a):
    services.breaker_report(tenant=tenant_a, reports=[services.Report("api", "failure", 5.0)])
    decisions = [services.breaker_acquire(tenant=tenant_a, name="api") for _ in range(3)]
    assert [d.permitted for d in decisions] == [True, True, False]  # 2 failures from opening
    assert decisions[0].ticket and not decisions[0].probe and decisions[2].state == "closed"
    services.breaker_report(tenant=tenant_a, reports=[
        services.Report("api", "ignored", 5.0, ticket=decisions[0].ticket)])
    assert services.breaker_acquire(tenant=tenant_a, name="api").permitted


def _fail_until_open(record: BreakerRecord, config: BreakerConfig, now: float, limit: int) -> int | None:
    """Failures merged one by one until the breaker opens; None if `limit` failures do not open it."""
    record = copy.deepcopy(record)
    for n in range(1, limit + 1):
        batch = OutcomeBatch(config)
        batch.add(failed=True, slow=False, now=now)
        if merge(record, config, batch, now, gate_budget=0).state == "open":
            return n
    return None


@pytest.mark.parametrize("seed", range(40))
def test_the_budget_is_the_number_of_failures_that_really_open_the_breaker(seed):
    rng = random.Random(seed)
    kind = rng.choice(["count", "time", "consecutive"])
    config = BreakerConfig(
        name="p", window_kind="time" if kind == "time" else "count", window_size=rng.randint(1, 40),
        minimum_calls=rng.randint(1, 30), failure_rate_threshold_pct=rng.choice([1, 10, 33.3, 50, 75, 99.99, 100]),
        consecutive_failures=rng.randint(1, 8) if kind == "consecutive" else None,
    )
    record, now = BreakerRecord(), 1000.0
    for _ in range(rng.randint(0, 60)):
        batch = OutcomeBatch(config)
        batch.add(failed=rng.random() < 0.3, slow=False, now=now)
        merge(record, config, batch, now, gate_budget=0)
        if record.state != "closed":
            return
    budget = failures_to_open(record, config, record.figures(config, now), limit=500)
    assert budget == _fail_until_open(record, config, now, limit=500)
