"""One contract, every backend: the state machine's transitions on a fake clock, window kinds, probes, bulkheads."""
from __future__ import annotations

import uuid

import pytest

from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.backends.redis import RedisBackend
from apps.resilience.machine import Admission, BreakerConfig, OutcomeBatch

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

    def probe(self, backend, config, now, ticket=None):
        """(granted, state) for a new ticket, or `ticket`; the ticket is kept in `self.tickets`."""
        ticket = ticket or uuid.uuid4().hex[:16]
        granted, state = backend.acquire_probe(KEY, config, now, 30, ticket)
        if granted:
            self.tickets.append(ticket)
        return granted, state

    def report(self, backend, config, now, outcome, ticket=None, slow=False, accepted=None):
        ok, state = backend.report_probe(KEY, config, ticket=ticket, outcome=outcome, slow=slow, now=now,
                                         probe_timeout_s=30)
        if accepted is not None:
            assert ok is accepted
        return state

    @pytest.fixture(autouse=True)
    def _tickets(self):
        self.tickets = []

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
        granted, state = self.probe(backend, config, clock.now())
        assert not granted and state.state == "open"
        clock.advance(0.1)
        granted, state = self.probe(backend, config, clock.now())
        assert granted and state.state == "half_open"
        assert state.transition.from_state == "open" and state.transition.to_state == "half_open"
        assert self.probe(backend, config, clock.now())[0]
        assert not self.probe(backend, config, clock.now())[0]

    def test_all_probes_succeeding_closes_with_an_empty_window(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=2)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        self.probe(backend, config, clock.now())
        self.probe(backend, config, clock.now())
        state = self.report(backend, config, clock.now(), "success")
        assert state.state == "half_open" and state.transition is None
        state = self.report(backend, config, clock.now(), "success")
        assert state.state == "closed" and state.transition.to_state == "closed"
        assert state.figures.calls == 0 and state.figures.consecutive == 0

    def test_a_success_reported_without_an_outstanding_ticket_is_not_counted(self, backend, clock):
        # The report API takes probe=true from any caller: successes beyond the tickets granted must not
        # close the breaker while the real probe is still out.
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=2)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        self.probe(backend, config, clock.now())
        for _ in range(3):
            state = self.report(backend, config, clock.now(), "success")
        assert state.state == "half_open" and state.transition is None
        self.probe(backend, config, clock.now())
        state = self.report(backend, config, clock.now(), "success")
        assert state.state == "closed"

    def test_a_failed_probe_opens_again_for_longer_up_to_the_cap(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10,
                               open_duration_multiplier=2.0, max_open_duration_s=30)
        self.merge(backend, config, "ff", clock.now())
        expected = [20, 30, 30]  # 10 * 2, then 10 * 4 capped at 30, and capped again
        for duration in expected:
            clock.advance(100)
            assert self.probe(backend, config, clock.now())[0]
            state = self.report(backend, config, clock.now(), "failure")
            assert state.state == "open" and state.transition.reason == "half-open probe failed"
            assert state.open_until == pytest.approx(clock.now() + duration)

    def test_a_close_forgets_the_open_history(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10,
                               open_duration_multiplier=2.0)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        self.probe(backend, config, clock.now())
        self.report(backend, config, clock.now(), "success")
        state = self.merge(backend, config, "ff", clock.now())
        assert state.open_count == 1 and state.open_until == pytest.approx(clock.now() + 10)

    def test_a_probe_ticket_never_reported_is_given_back_after_the_probe_timeout(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, open_duration_s=10, half_open_probes=1)
        self.merge(backend, config, "ff", clock.now())
        clock.advance(10)
        assert self.probe(backend, config, clock.now())[0]
        clock.advance(29)
        assert not self.probe(backend, config, clock.now())[0]
        clock.advance(1)
        assert self.probe(backend, config, clock.now())[0]

    def half_open(self, backend, config, clock):
        self.merge(backend, config, "f" * max(config.effective_minimum_calls, config.consecutive_failures or 0),
                   clock.now())
        clock.advance(config.open_duration_s)

    def test_an_ignored_probe_gives_its_ticket_back(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=2)
        self.half_open(backend, config, clock)
        assert self.probe(backend, config, clock.now())[0] and self.probe(backend, config, clock.now())[0]
        assert not self.probe(backend, config, clock.now())[0]
        state = self.report(backend, config, clock.now(), "ignored", ticket=self.tickets[0], accepted=True)
        assert state.state == "half_open" and state.figures.calls == 0
        assert self.probe(backend, config, clock.now())[0]  # the ticket came back
        self.report(backend, config, clock.now(), "ignored", ticket=self.tickets[0], accepted=False)  # used once

    def test_a_report_against_an_expired_ticket_is_refused_and_judges_nothing(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=1)
        self.half_open(backend, config, clock)
        assert self.probe(backend, config, clock.now())[0]
        clock.advance(30)
        state = self.report(backend, config, clock.now(), "success", ticket=self.tickets[0], accepted=False)
        assert state.state == "half_open" and state.transition is None
        self.report(backend, config, clock.now(), "success", accepted=False)  # no ticket out at all
        assert self.probe(backend, config, clock.now())[0]
        state = self.report(backend, config, clock.now(), "success", ticket=self.tickets[1], accepted=True)
        assert state.state == "closed"

    def test_rates_mode_judges_the_probes_once_all_have_reported(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=4,
                               half_open_mode="rates", failure_rate_threshold_pct=50)
        self.half_open(backend, config, clock)
        for _ in range(4):
            assert self.probe(backend, config, clock.now())[0]
        state = self.report(backend, config, clock.now(), "failure", ticket=self.tickets[0])
        assert state.state == "half_open" and state.figures.failures == 1  # one failure does not reopen
        self.report(backend, config, clock.now(), "success", ticket=self.tickets[1])
        state = self.report(backend, config, clock.now(), "success", ticket=self.tickets[2])
        assert state.state == "half_open" and state.figures.calls == 3
        state = self.report(backend, config, clock.now(), "success", ticket=self.tickets[3])  # 1 of 4: 25 % < 50 %
        assert state.state == "closed" and state.transition.reason == "4 probe(s) below the thresholds"

    def test_rates_mode_reopens_on_the_probes_failure_or_slow_rate(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=2,
                               half_open_mode="rates", failure_rate_threshold_pct=50,
                               slow_call_rate_threshold_pct=100)
        self.half_open(backend, config, clock)
        self.probe(backend, config, clock.now())
        self.probe(backend, config, clock.now())
        self.report(backend, config, clock.now(), "success", ticket=self.tickets[0], slow=True)
        state = self.report(backend, config, clock.now(), "success", ticket=self.tickets[1], slow=True)
        assert state.state == "open" and state.transition.reason == "half-open probes: slow-call rate 100.00% >= 100%"
        assert state.transition.figures.slow == 2
        clock.advance(20)
        self.probe(backend, config, clock.now())
        self.probe(backend, config, clock.now())
        self.report(backend, config, clock.now(), "success", ticket=self.tickets[2])
        state = self.report(backend, config, clock.now(), "failure", ticket=self.tickets[3])
        assert state.state == "open" and "failure rate 50.00% >= 50%" in state.transition.reason

    def test_max_wait_in_half_open_opens_again_without_a_verdict(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=2,
                               max_wait_in_half_open_s=5)
        self.half_open(backend, config, clock)
        assert self.probe(backend, config, clock.now())[0]
        clock.advance(4.9)
        assert backend.read(KEY, config, clock.now()).state == "half_open"
        clock.advance(0.1)
        state = backend.read(KEY, config, clock.now())
        assert state.state == "open" and state.transition.reason == "half-open for 5 s without a verdict"
        assert state.open_until == pytest.approx(clock.now() + 10)

    def test_automatic_transition_moves_to_half_open_without_a_call(self, backend, clock):
        manual = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10)
        automatic = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10, automatic_transition=True)
        self.half_open(backend, manual, clock)
        assert backend.read(KEY, manual, clock.now()).state == "open"  # waits for the next call
        state = backend.read(KEY, automatic, clock.now())
        assert state.state == "half_open" and state.transition.to_state == "half_open"
        assert backend.read(KEY, automatic, clock.now()).transition is None

    def test_decimal_thresholds_compare_exactly(self, backend, clock):
        config = BreakerConfig(name="p", window_size=1000, minimum_calls=1000, failure_rate_threshold_pct=50.5)
        state = self.merge(backend, config, "o" * 496 + "f" * 504, clock.now())  # 50.4 %
        assert state.state == "closed"
        state = self.merge(backend, config, "f", clock.now())  # an ok slides out: 505 of 1000 = 50.5 %
        assert state.state == "open" and state.transition.reason == "failure rate 50.50% >= 50.5%"

    def test_minimum_calls_beyond_a_count_window_is_capped_to_the_window(self, backend, clock):
        config = BreakerConfig(name="p", window_size=5, minimum_calls=50, failure_rate_threshold_pct=50)
        assert config.effective_minimum_calls == 5
        assert self.merge(backend, config, "ooff", clock.now()).state == "closed"
        assert self.merge(backend, config, "o", clock.now()).state == "closed"  # 2 of 5
        assert self.merge(backend, config, "f", clock.now()).state == "open"  # 3 of 5

    def test_metrics_only_keeps_counting_and_never_opens(self, backend, clock):
        config = BreakerConfig(name="p", window_size=10, minimum_calls=2, forced_state="metrics_only")
        state = self.merge(backend, config, "ffff", clock.now())
        assert state.state == "closed" and state.transition is None and state.figures.failures == 4
        state = self.merge(backend, config, "ff", clock.now())
        assert state.figures.calls == 6 and state.figures.failures == 6

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

    # The failure budget: a closed breaker few failures from opening gates every call start.
    def admit(self, backend, config, now, process="B", in_flight=0, seq=1):
        """(granted, state) for a new gate ticket, kept in `self.tickets` when granted."""
        ticket = uuid.uuid4().hex[:16]
        granted, state = backend.admit(KEY, config, now, Admission(process, in_flight, seq, ticket), 30)
        if granted:
            self.tickets.append(ticket)
        return granted, state

    def outcome(self, backend, config, outcomes, now, process="B", in_flight=0, seq=1, ticket=None):
        return backend.merge(KEY, config, batch(config, outcomes, now), now, Admission(process, in_flight, seq, ticket))

    CONSECUTIVE = BreakerConfig(name="p", consecutive_failures=5, open_duration_s=10)

    def test_a_failure_gates_starts_and_the_budget_counts_tickets_and_every_process_in_flight(self, backend, clock):
        config = self.CONSECUTIVE
        assert not self.merge(backend, config, "ooo", clock.now()).gated  # successes alone never gate
        state = self.outcome(backend, config, "f", clock.now(), process="A", in_flight=2)
        assert state.state == "closed" and state.gated  # 4 more failures would open it
        assert self.admit(backend, config, clock.now())[0]  # 2 of A's calls in flight + 1 ticket < 4
        granted, state = self.admit(backend, config, clock.now())
        assert granted and state.gated
        assert not self.admit(backend, config, clock.now())[0]  # 2 + 2 tickets: the budget is taken
        state = self.outcome(backend, config, "f", clock.now(), process="A", in_flight=1, seq=2)  # 3 left
        assert state.gated and not self.admit(backend, config, clock.now())[0]  # 1 + 2 tickets
        self.outcome(backend, config, "f", clock.now(), ticket=self.tickets[0])  # 2 left, 1 + 1 ticket out
        assert not self.admit(backend, config, clock.now())[0]
        state = self.outcome(backend, config, "f", clock.now(), process="A", in_flight=0, seq=3)  # 1 left
        assert state.gated and not self.admit(backend, config, clock.now())[0]  # the last ticket still out
        state = self.outcome(backend, config, "o", clock.now(), ticket=self.tickets[1])
        assert state.state == "closed" and not state.gated  # a success: no failure in a row left
        granted, state = self.admit(backend, config, clock.now())
        assert not granted and not state.gated  # not gated: the caller starts its call freely

    def test_gated_starts_never_exceed_the_failures_that_would_open(self, backend, clock):
        config = self.CONSECUTIVE
        self.outcome(backend, config, "f", clock.now(), process="A", in_flight=0)
        granted = [self.admit(backend, config, clock.now())[0] for _ in range(10)]
        assert granted.count(True) == 4
        for ticket in self.tickets[:3]:
            assert self.outcome(backend, config, "f", clock.now(), ticket=ticket).state == "closed"
        state = self.outcome(backend, config, "f", clock.now(), ticket=self.tickets[3])
        assert state.state == "open" and not state.gated
        granted, state = self.admit(backend, config, clock.now())
        assert not granted and state.state == "open"

    def test_an_older_in_flight_report_never_overwrites_a_newer_one(self, backend, clock):
        config = self.CONSECUTIVE
        self.outcome(backend, config, "f", clock.now(), process="A", in_flight=0, seq=5)
        self.outcome(backend, config, "", clock.now(), process="A", in_flight=4, seq=4)  # arrived late
        assert self.admit(backend, config, clock.now())[0]  # A's 0 stands: 4 left, 0 in flight

    def test_an_ignored_outcome_gives_its_gate_ticket_back(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10)
        self.outcome(backend, config, "f", clock.now())
        assert self.admit(backend, config, clock.now())[0]
        assert not self.admit(backend, config, clock.now())[0]
        state = self.outcome(backend, config, "", clock.now(), ticket=self.tickets[0])  # ignored: no outcome
        assert state.gated and state.figures.consecutive == 1
        assert self.admit(backend, config, clock.now())[0]

    def test_gate_tickets_and_in_flight_counts_lapse_after_the_timeout(self, backend, clock):
        config = self.CONSECUTIVE
        self.outcome(backend, config, "f", clock.now(), process="A", in_flight=2)
        assert self.admit(backend, config, clock.now())[0] and self.admit(backend, config, clock.now())[0]
        assert not self.admit(backend, config, clock.now())[0]
        clock.advance(29)
        assert not self.admit(backend, config, clock.now(), seq=2)[0]
        clock.advance(1)  # A vanished with its calls, the tickets' holders too
        assert self.admit(backend, config, clock.now(), seq=3)[0]

    def test_a_count_window_gates_once_few_failures_would_open_it(self, backend, clock, settings):
        settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"GATE_BUDGET": 3}}
        config = BreakerConfig(name="p", window_size=10, minimum_calls=5, failure_rate_threshold_pct=50)
        state = self.merge(backend, config, "f" + "o" * 9, clock.now())  # 4 failures would slide to 5 of 10
        assert not state.gated
        state = self.merge(backend, config, "f", clock.now())  # the old f slid out: ooooooooof, still 4 needed
        assert not state.gated and state.figures.failures == 1
        state = self.merge(backend, config, "f", clock.now())  # ooooooooff: 3 more make 5 of 10
        assert state.gated
        granted = [self.admit(backend, config, clock.now())[0] for _ in range(4)]
        assert granted.count(True) == 3

    def test_a_window_below_its_minimum_calls_gates_on_the_calls_still_needed(self, backend, clock, settings):
        settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"GATE_BUDGET": 4}}
        for kind in ("count", "time"):
            config = BreakerConfig(name=kind, window_kind=kind, window_size=60, minimum_calls=10,
                                   failure_rate_threshold_pct=50)
            key = f"t1:{kind}"
            state = backend.merge(key, config, batch(config, "fff", clock.now()), clock.now())
            assert not state.gated  # 7 more calls are needed before any rate
            state = backend.merge(key, config, batch(config, "oooo", clock.now()), clock.now())
            assert state.gated  # 3 of 7: 3 more failures make 6 of 10
            state = backend.merge(key, config, batch(config, "oooooo", clock.now()), clock.now())
            assert not state.gated  # 3 of 13: 7 more needed

    def test_a_zero_gate_budget_never_gates(self, backend, clock, settings):
        settings.BULWARK = {**settings.BULWARK, "RESILIENCE": {"GATE_BUDGET": 0}}
        state = self.merge(backend, self.CONSECUTIVE, "ffff", clock.now())
        assert state.state == "closed" and not state.gated

    def test_metrics_only_is_never_gated(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=5, forced_state="metrics_only")
        assert not self.merge(backend, config, "ffff", clock.now()).gated

    def test_a_read_reports_the_gate_and_a_close_lifts_it(self, backend, clock):
        config = BreakerConfig(name="p", consecutive_failures=2, open_duration_s=10)
        self.merge(backend, config, "f", clock.now())
        assert backend.read(KEY, config, clock.now()).gated
        self.merge(backend, config, "f", clock.now())
        clock.advance(10)
        assert self.probe(backend, config, clock.now())[0]
        state = self.report(backend, config, clock.now(), "success")
        assert state.state == "closed" and not state.gated

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

    def test_a_malformed_transition_message_does_not_stop_the_listener(self, backend, shared_redis):
        """Pub/sub spans the Redis server's databases: another deployment's (other version's) message on a
        matching channel is skipped, and the next real transition still arrives."""
        import threading

        seen: list[tuple[str, str, float, bool]] = []
        stopping = threading.Event()
        listener = threading.Thread(target=backend.listen, args=(lambda *args: seen.append(args), stopping))
        listener.start()
        try:
            channel = backend.channel(KEY)
            for _ in range(50):  # until the subscription is in place
                if shared_redis.pubsub_numpat() > 0:
                    break
                threading.Event().wait(0.05)
            shared_redis.publish(channel, "open 0 1 extra")
            shared_redis.publish(channel, "open not-a-number 0")
            shared_redis.publish(channel, "open 123.5 1")
            for _ in range(100):
                if seen:
                    break
                threading.Event().wait(0.05)
        finally:
            stopping.set()
            listener.join(timeout=5)
        assert not listener.is_alive()
        assert seen == [(channel, "open", 123.5, True)]
