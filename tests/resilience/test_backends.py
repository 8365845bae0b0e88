"""One contract, every backend: the state machine's transitions on a fake clock, window kinds, probes, bulkheads."""
from __future__ import annotations

import pytest

from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.backends.redis import RedisBackend
from apps.resilience.machine import BreakerConfig, OutcomeBatch

KEY = "t1:payments"


def batch(config: BreakerConfig, outcomes: str, now: float) -> OutcomeBatch:
    """o ok, f failure, s slow ok, F slow failure."""
    b = OutcomeBatch(config)
    for ch in outcomes:
        b.add(failed=ch in "fF", slow=ch in "sF", now=now)
    return b


RATE = BreakerConfig(name="payments", window_size=10, minimum_calls=5, failure_rate_threshold_pct=50,
                     open_duration_s=10.0)


class BackendContract:
    @pytest.fixture
    def backend(self):
        raise NotImplementedError

    def merge(self, backend, config, outcomes, now):
        return backend.merge(KEY, config, batch(config, outcomes, now), now)

    def test_count_window_opens_at_the_failure_rate_threshold(self, backend, clock):
        state = self.merge(backend, RATE, "oooooof", clock.now())
        assert state.state == "closed" and state.figures.calls == 7 and state.figures.failures == 1
        state = self.merge(backend, RATE, "ff", clock.now())  # 3 of 9: below 50%
        assert state.state == "closed"
        state = self.merge(backend, RATE, "f", clock.now())  # 4 of 10
        assert state.state == "closed"
        state = self.merge(backend, RATE, "f", clock.now())  # window slides: o o o o o f f f f f -> 5 of 10
        assert state.state == "open"
        assert state.transition.from_state == "closed" and state.transition.to_state == "open"
        assert state.transition.figures.calls == 10 and state.transition.figures.failures == 5
        assert "failure rate 50.0" in state.transition.reason
        assert state.open_until == pytest.approx(clock.now() + 10.0)

    def test_no_rate_before_the_minimum_calls(self, backend, clock):
        state = self.merge(backend, RATE, "ffff", clock.now())
        assert state.state == "closed" and state.figures.failures == 4
        assert self.merge(backend, RATE, "o", clock.now()).state == "open"  # 4 of 5

    def test_count_window_keeps_only_the_last_n_calls(self, backend, clock):
        self.merge(backend, RATE, "f" * 2 + "o" * 20, clock.now())
        state = backend.read(KEY, RATE, clock.now())
        assert state.figures.calls == 10 and state.figures.failures == 0

    def test_time_window_forgets_old_seconds(self, backend, clock):
        config = BreakerConfig(name="p", window_kind="time", window_size=10, minimum_calls=4,
                               failure_rate_threshold_pct=50)
        self.merge(backend, config, "fff", clock.now())
        clock.advance(11)
        state = self.merge(backend, config, "ooo", clock.now())
        assert state.state == "closed"
        assert state.figures.calls == 3 and state.figures.failures == 0
        clock.advance(2)
        state = self.merge(backend, config, "fff", clock.now())  # 3 of 6 within the last 10 s
        assert state.state == "open" and state.figures.calls == 6

    def test_time_window_opens_within_the_window(self, backend, clock):
        config = BreakerConfig(name="p", window_kind="time", window_size=60, minimum_calls=4,
                               failure_rate_threshold_pct=75)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(30)
        state = self.merge(backend, config, "fo", clock.now())
        assert state.state == "open" and state.transition.figures.calls == 4

    def test_consecutive_failures_open_and_a_success_resets_the_count(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=3, open_duration_s=60)
        assert self.merge(backend, config, "ff", clock.now()).figures.consecutive == 2
        state = self.merge(backend, config, "of", clock.now())
        assert state.state == "closed" and state.figures.consecutive == 1
        state = self.merge(backend, config, "ff", clock.now())
        assert state.state == "open" and "3 consecutive failures" in state.transition.reason

    def test_slow_call_rate_opens(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=4, slow_call_rate_threshold_pct=50)
        state = self.merge(backend, config, "ossoo", clock.now())
        assert state.state == "closed" and state.figures.slow == 2
        state = self.merge(backend, config, "s", clock.now())  # 3 slow of 6
        assert state.state == "open" and "slow-call rate" in state.transition.reason

    def test_slow_calls_count_without_a_slow_threshold(self, backend, clock):
        state = self.merge(backend, RATE, "sssssss", clock.now())
        assert state.state == "closed" and state.figures.slow == 7

    def test_outcomes_of_calls_made_while_open_are_not_counted(self, backend, clock):
        self.merge(backend, RATE, "fffff", clock.now())
        state = self.merge(backend, RATE, "ooooo", clock.now())
        assert state.state == "open" and state.transition is None

    def test_open_refuses_probes_until_its_end_then_grants_exactly_the_permitted_number(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=2)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(9.9)
        granted, state = backend.acquire_probe(KEY, config, clock.now(), 30)
        assert not granted and state.state == "open"
        clock.advance(0.1)
        granted, state = backend.acquire_probe(KEY, config, clock.now(), 30)
        assert granted and state.state == "half_open"
        assert state.transition.from_state == "open" and state.transition.to_state == "half_open"
        assert backend.acquire_probe(KEY, config, clock.now(), 30)[0]
        assert not backend.acquire_probe(KEY, config, clock.now(), 30)[0]

    def test_all_probes_succeeding_closes_with_an_empty_window(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=2)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        backend.acquire_probe(KEY, config, clock.now(), 30)
        backend.acquire_probe(KEY, config, clock.now(), 30)
        state = backend.report_probe(KEY, config, failed=False, now=clock.now())
        assert state.state == "half_open" and state.transition is None
        state = backend.report_probe(KEY, config, failed=False, now=clock.now())
        assert state.state == "closed" and state.transition.to_state == "closed"
        assert state.figures.calls == 0 and state.figures.consecutive == 0

    def test_a_success_reported_without_an_outstanding_ticket_is_not_counted(self, backend, clock):
        # The report API takes probe=true from any caller: successes beyond the tickets granted must not
        # close the breaker while the real probe is still out.
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=2)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        backend.acquire_probe(KEY, config, clock.now(), 30)
        for _ in range(3):
            state = backend.report_probe(KEY, config, failed=False, now=clock.now())
        assert state.state == "half_open" and state.transition is None
        backend.acquire_probe(KEY, config, clock.now(), 30)
        state = backend.report_probe(KEY, config, failed=False, now=clock.now())
        assert state.state == "closed"

    def test_a_failed_probe_opens_again_for_longer_up_to_the_cap(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10,
                               open_duration_multiplier=2.0, max_open_duration_s=30)
        self.merge(backend, config, "ff", clock.now())
        expected = [20, 30, 30]  # 10 * 2, then 10 * 4 capped at 30, and capped again
        for duration in expected:
            clock.advance(100)
            assert backend.acquire_probe(KEY, config, clock.now(), 30)[0]
            state = backend.report_probe(KEY, config, failed=True, now=clock.now())
            assert state.state == "open" and state.transition.reason == "half-open probe failed"
            assert state.open_until == pytest.approx(clock.now() + duration)

    def test_a_close_forgets_the_open_history(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10,
                               open_duration_multiplier=2.0)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        backend.acquire_probe(KEY, config, clock.now(), 30)
        backend.report_probe(KEY, config, failed=False, now=clock.now())
        state = self.merge(backend, config, "ff", clock.now())
        assert state.open_count == 1 and state.open_until == pytest.approx(clock.now() + 10)

    def test_a_probe_ticket_never_reported_is_given_back_after_the_probe_timeout(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=1)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        assert backend.acquire_probe(KEY, config, clock.now(), 30)[0]
        clock.advance(29)
        assert not backend.acquire_probe(KEY, config, clock.now(), 30)[0]
        clock.advance(1)
        assert backend.acquire_probe(KEY, config, clock.now(), 30)[0]

    def test_reset_closes_and_empties_the_window(self, backend, clock):
        self.merge(backend, RATE, "fffff", clock.now())
        state = backend.reset(KEY, RATE, clock.now())
        assert state.state == "closed" and state.figures.calls == 0
        assert state.transition.from_state == "open" and state.transition.figures.failures == 5
        assert self.merge(backend, RATE, "oooo", clock.now()).state == "closed"

    def test_breakers_are_independent(self, backend, clock):
        self.merge(backend, RATE, "fffff", clock.now())
        assert backend.read("t2:payments", RATE, clock.now()).state == "closed"
        assert backend.read("t1:other", RATE, clock.now()).state == "closed"

    def test_bulkhead_holds_at_most_the_limit_and_expires_dead_holders(self, backend, clock):
        tokens = [backend.bulkhead_acquire(KEY, limit=2, lease_s=60, now=clock.now()) for _ in range(3)]
        assert tokens[0] and tokens[1] and tokens[2] is None
        backend.bulkhead_release(KEY, tokens[0])
        assert backend.bulkhead_acquire(KEY, limit=2, lease_s=60, now=clock.now())
        assert backend.bulkhead_acquire(KEY, limit=2, lease_s=60, now=clock.now()) is None
        clock.advance(61)
        assert backend.bulkhead_acquire(KEY, limit=2, lease_s=60, now=clock.now())


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return MemoryBackend()


class TestRedisBackend(BackendContract):
    @pytest.fixture
    def backend(self, shared_redis):
        return RedisBackend(client=shared_redis)

    def test_every_key_of_a_breaker_shares_one_cluster_slot(self):
        keys = RedisBackend._keys(KEY)
        assert all("{t1:payments}" in key for key in keys)
