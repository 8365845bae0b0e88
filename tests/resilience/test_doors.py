"""The Python doors: decorators and context managers (sync and async), resilient_call with retries, budget,
timeout and fallbacks."""
from __future__ import annotations

import asyncio
import threading

import pytest

from apps.core import context
from apps.core.context import RequestContext
from apps.resilience.decorators import aresilient_call, breaker, last_good, resilient_call
from apps.resilience.errors import BreakerOpen, CallTimeout
from apps.resilience.retry import RetryBudget, RetryConfig
from apps.resilience.runtime import get_breaker
from tests.resilience.factories import BreakerPolicyFactory, RetryPolicyFactory


class Flaky:
    """Fails the first `failures` calls, then answers `value`."""

    def __init__(self, failures: int, value="ok", exc=ConnectionError):
        self.failures = failures
        self.value = value
        self.exc = exc
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return self.value


@pytest.fixture
def consecutive(db, tenant_a):
    return BreakerPolicyFactory(tenant=tenant_a, name="api", consecutive_failures=2, open_duration_s=60)


def test_decorator_counts_outcomes_and_refuses_once_open(fresh_registry, consecutive, tenant_a):
    @breaker("api", tenant=tenant_a)
    def fetch(ok: bool):
        if not ok:
            raise ConnectionError("down")
        return "data"

    assert fetch(True) == "data"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            fetch(False)
    fresh_registry.flush_all()
    with pytest.raises(BreakerOpen):
        fetch(True)


def test_the_tenant_comes_from_the_request_context(fresh_registry, consecutive, tenant_a):
    with context.bind(RequestContext(tenant=tenant_a)), breaker("api"):
        pass
    assert get_breaker("api", tenant_a).config.consecutive_failures == 2


@pytest.fixture
def warm(consecutive, tenant_a):
    """Look the policy up in sync code: the test's database transaction is not visible from other threads."""
    return get_breaker("api", tenant_a)


async def test_async_decorator_and_async_with(fresh_registry, warm, tenant_a):
    @breaker("api", tenant=tenant_a)
    async def fetch(ok: bool):
        await asyncio.sleep(0)
        if not ok:
            raise ConnectionError("down")
        return "data"

    assert await fetch(True) == "data"
    with pytest.raises(ConnectionError):
        await fetch(False)
    with pytest.raises(ConnectionError):
        async with breaker("api", tenant=tenant_a):
            raise ConnectionError("down")
    fresh_registry.flush_all(write_db=False)  # no database writes in the event loop
    with pytest.raises(BreakerOpen):
        async with breaker("api", tenant=tenant_a):
            pass


def test_resilient_call_retries_with_backoff_until_success(fresh_registry, clock):
    flaky = Flaky(2)
    started = clock.now()
    retry = RetryConfig(max_attempts=3, backoff_base_s=1.0, backoff_cap_s=10.0, budget_pct=0)
    assert resilient_call("svc", flaky, retry=retry) == "ok"
    assert flaky.calls == 3
    assert 0 <= clock.now() - started <= 1.0 + 2.0  # full jitter: at most base, then at most 2 * base


def test_full_jitter_backoff_grows_to_the_cap():
    retry = RetryConfig(backoff_base_s=0.1, backoff_cap_s=1.0)
    assert [retry.backoff_s(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert retry.backoff_s(3, rand=lambda: 0.0) == 0.0


def test_resilient_call_uses_a_tenants_retry_policy_by_name(fresh_registry, db, tenant_a):
    RetryPolicyFactory(tenant=tenant_a, name="twice", max_attempts=2, backoff_base_ms=1, backoff_cap_ms=1)
    flaky = Flaky(5)
    with pytest.raises(ConnectionError):
        resilient_call("svc", flaky, retry="twice", tenant=tenant_a)
    assert flaky.calls == 2


def test_errors_outside_the_retry_list_are_not_retried(fresh_registry):
    flaky = Flaky(5, exc=ValueError)
    with pytest.raises(ValueError):
        resilient_call("svc", flaky, retry=RetryConfig(max_attempts=5, retry_exceptions=(ConnectionError,)))
    assert flaky.calls == 1


def test_retries_never_go_into_an_open_breaker(fresh_registry, consecutive, tenant_a):
    flaky = Flaky(100)
    retry = RetryConfig(max_attempts=10, backoff_base_s=0.01, budget_pct=0)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            resilient_call("api", flaky, tenant=tenant_a)
    fresh_registry.flush_all()
    calls_before = flaky.calls
    with pytest.raises(BreakerOpen):
        resilient_call("api", flaky, retry=retry, tenant=tenant_a)
    assert flaky.calls == calls_before


def test_retry_budget_caps_retries_at_a_share_of_recent_calls(fresh_registry, db, tenant_a, clock):
    BreakerPolicyFactory(tenant=tenant_a, name="budgeted", forced_state="forced_closed")  # only the budget acts
    retry = RetryConfig(max_attempts=2, backoff_base_s=0.0, budget_pct=20, budget_min_retries_per_s=0)
    healthy = Flaky(0)
    for _ in range(50):
        resilient_call("budgeted", healthy, retry=retry, tenant=tenant_a)
    failing = Flaky(10**6)
    for _ in range(50):
        with pytest.raises(ConnectionError):
            resilient_call("budgeted", failing, retry=retry, tenant=tenant_a)
    # 100 calls in the window allow 20 retries: 50 first attempts + 20 retries reached the failing dependency
    assert failing.calls == 50 + 20


def test_retry_budget_recovers_after_its_window(clock):
    budget = RetryBudget()
    config = RetryConfig(budget_pct=10, budget_min_retries_per_s=0)
    for _ in range(10):
        budget.record_call(clock.now())
    assert budget.try_spend(config, clock.now())
    assert not budget.try_spend(config, clock.now())
    clock.advance(10)
    for _ in range(10):
        budget.record_call(clock.now())
    assert budget.try_spend(config, clock.now())


def test_retry_budget_always_allows_the_minimum_per_second(clock):
    budget = RetryBudget()
    config = RetryConfig(budget_pct=10, budget_min_retries_per_s=1)
    assert sum(budget.try_spend(config, clock.now()) for _ in range(20)) == 10  # 1/s over the 10 s window


def test_fallback_answers_when_the_call_fails_or_is_refused(fresh_registry, consecutive, tenant_a):
    assert resilient_call("api", Flaky(1), fallback=lambda exc: f"fallback: {exc}", tenant=tenant_a) == \
        "fallback: failure 1"
    resilient_call("api", Flaky(1), fallback=lambda exc: None, tenant=tenant_a)
    fresh_registry.flush_all()
    assert resilient_call("api", Flaky(0), fallback=lambda exc: type(exc).__name__, tenant=tenant_a) == "BreakerOpen"


def test_last_good_fallback_serves_the_last_success(fresh_registry):
    fallback = last_good("rates", ttl_s=60)
    assert resilient_call("rates", Flaky(0, value={"eur": 1.1}), fallback=fallback) == {"eur": 1.1}
    assert resilient_call("rates", Flaky(1), fallback=fallback) == {"eur": 1.1}


def test_last_good_without_a_success_raises_the_error(fresh_registry):
    with pytest.raises(ConnectionError):
        resilient_call("rates", Flaky(1), fallback=last_good("never-succeeded"))


def test_sync_timeout_stops_waiting_and_counts_a_failure(fresh_registry):
    release = threading.Event()
    with pytest.raises(CallTimeout):
        resilient_call("slowsvc", lambda: release.wait(5), timeout_s=0.05)
    release.set()
    fresh_registry.flush_all()
    assert get_breaker("slowsvc").figures.failures == 1


async def test_async_timeout_cancels_and_retries(fresh_registry):
    attempts = []

    async def slow():
        attempts.append(1)
        await asyncio.sleep(5)

    with pytest.raises(CallTimeout):
        await aresilient_call("slowsvc", slow, timeout_s=0.02,
                              retry=RetryConfig(max_attempts=2, backoff_base_s=0.0, budget_pct=0))
    assert len(attempts) == 2


async def test_async_resilient_call_with_fallback(fresh_registry):
    async def down():
        raise ConnectionError("down")

    assert await aresilient_call("svc", down, fallback=lambda exc: "cached") == "cached"


async def test_a_cancelled_call_counts_neither_way(fresh_registry):
    @breaker("svc", tenant=None)
    async def slow():
        await asyncio.sleep(5)

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fresh_registry.flush_all(write_db=False)
    figures = get_breaker("svc").figures
    assert (figures.calls, figures.failures) == (0, 0)


@pytest.fixture
def warm_slow(db, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="slowapi", timeout_s=0.02)
    return get_breaker("slowapi", tenant_a)


async def test_a_decorated_coroutine_is_cut_at_the_policy_timeout(fresh_registry, warm_slow, tenant_a):
    @breaker("slowapi", tenant=tenant_a)
    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(CallTimeout):
        await slow()
    fresh_registry.flush_all(write_db=False)
    assert get_breaker("slowapi", tenant_a).figures.failures == 1
