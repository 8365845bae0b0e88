"""The breaker in plain Python: compiled configuration, outcome batches, window figures and the state machine.

Nothing here touches the network, the database or the real clock: every function takes `now` (seconds),
so the memory backend, the local fallback and the tests all run the same transitions on a fake clock.
The Redis backend runs the same rules in Lua (`backends/lua/*.lua`); one contract suite holds both to them.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
SUCCESS, FAILURE, IGNORED = "success", "failure", "ignored"

# One character per call in a count window: ok, slow ok, failure, slow failure.
OK_CHAR, SLOW_CHAR, FAIL_CHAR, SLOW_FAIL_CHAR = "o", "s", "f", "F"

# A time window is kept in at most this many buckets, whatever its length.
TIME_BUCKETS = 60


@dataclass(frozen=True)
class BreakerConfig:
    """A policy compiled for the hot path: exception classes resolved, durations in seconds."""

    name: str
    window_kind: str = "count"
    window_size: int = 100
    failure_rate_threshold_pct: float = 50.0
    slow_call_duration_s: float = 2.0
    slow_call_rate_threshold_pct: float | None = None
    minimum_calls: int = 10
    consecutive_failures: int | None = None
    open_duration_s: float = 60.0
    open_duration_multiplier: float = 1.0
    max_open_duration_s: float = 600.0
    half_open_probes: int = 1
    failure_exceptions: tuple[type[BaseException], ...] = (Exception,)
    ignored_exceptions: tuple[type[BaseException], ...] = ()
    failure_statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    ignored_statuses: frozenset[int] = frozenset()
    timeout_s: float | None = None
    max_concurrent: int | None = None
    bulkhead_scope: str = "process"
    forced_state: str = "none"
    half_open_mode: str = "first_failure"
    max_wait_in_half_open_s: float | None = None
    automatic_transition: bool = False
    policy_id: int | None = None

    @classmethod
    def from_policy(cls, policy: Any) -> BreakerConfig:
        return cls(
            name=policy.name,
            window_kind=policy.window_kind,
            window_size=policy.window_size,
            failure_rate_threshold_pct=float(policy.failure_rate_threshold_pct),
            slow_call_duration_s=policy.slow_call_duration_ms / 1000.0,
            slow_call_rate_threshold_pct=(
                None if policy.slow_call_rate_threshold_pct is None else float(policy.slow_call_rate_threshold_pct)
            ),
            minimum_calls=policy.minimum_calls,
            consecutive_failures=policy.consecutive_failures,
            open_duration_s=policy.open_duration_s,
            open_duration_multiplier=policy.open_duration_multiplier,
            max_open_duration_s=policy.max_open_duration_s,
            half_open_probes=policy.half_open_probes,
            failure_exceptions=tuple(import_string(p) for p in policy.failure_exceptions) or (Exception,),
            ignored_exceptions=tuple(import_string(p) for p in policy.ignored_exceptions),
            failure_statuses=frozenset(policy.failure_statuses),
            ignored_statuses=frozenset(policy.ignored_statuses),
            timeout_s=policy.timeout_s,
            max_concurrent=policy.max_concurrent,
            bulkhead_scope=policy.bulkhead_scope,
            forced_state=policy.forced_state,
            half_open_mode=policy.half_open_mode,
            max_wait_in_half_open_s=policy.max_wait_in_half_open_s,
            automatic_transition=policy.automatic_transition,
            policy_id=policy.pk,
        )

    @property
    def failure_rate_bp(self) -> int:
        """The failure-rate threshold in hundredths of a percent: integer comparisons, so Python and Lua agree."""
        return round(self.failure_rate_threshold_pct * 100)

    @property
    def slow_rate_bp(self) -> int:
        return round(self.slow_call_rate_threshold_pct * 100) if self.slow_call_rate_threshold_pct else 0

    @property
    def effective_minimum_calls(self) -> int:
        """resilience4j's rule: a count window never needs more calls than it holds."""
        if self.window_kind == "count":
            return min(self.minimum_calls, self.window_size)
        return self.minimum_calls

    @property
    def metrics_only(self) -> bool:
        return self.forced_state == "metrics_only"

    def is_slow(self, duration_s: float) -> bool:
        """Slower than the threshold, strictly (as resilience4j counts): a call of exactly the threshold is not slow."""
        return duration_s > self.slow_call_duration_s

    @property
    def bucket_width_s(self) -> int:
        return max(1, math.ceil(self.window_size / TIME_BUCKETS))

    @property
    def keep_outcomes(self) -> int:
        """How many of a batch's last outcomes the shared window needs."""
        if self.window_kind == "count":
            return self.window_size
        return 0

    def open_duration_for(self, open_count: int) -> float:
        """The open duration of the `open_count`-th open in a row (1 for the first)."""
        grown = self.open_duration_s * self.open_duration_multiplier ** max(0, open_count - 1)
        return min(grown, max(self.max_open_duration_s, self.open_duration_s))

    def classify(self, exc: BaseException | None) -> str:
        if exc is None:
            return SUCCESS
        if not isinstance(exc, Exception):  # cancellation, KeyboardInterrupt: no verdict on the dependency
            return IGNORED
        if self.ignored_exceptions and isinstance(exc, self.ignored_exceptions):
            return IGNORED
        return FAILURE if isinstance(exc, self.failure_exceptions) else SUCCESS

    def classify_status(self, status: int) -> str:
        if status in self.ignored_statuses:
            return IGNORED
        return FAILURE if status in self.failure_statuses else SUCCESS


class OutcomeBatch:
    """Outcomes counted in one process since its last merge; `add` is the whole per-call cost of the closed path."""

    __slots__ = ("calls", "failures", "slow", "outcomes", "buckets", "had_success", "trailing_failures", "width_s")

    def __init__(self, config: BreakerConfig) -> None:
        self.calls = 0
        self.failures = 0
        self.slow = 0
        self.outcomes: deque[str] = deque(maxlen=config.keep_outcomes)
        self.buckets: dict[int, list[int]] = {}
        self.had_success = False
        self.trailing_failures = 0
        self.width_s = config.bucket_width_s if config.window_kind == "time" else 0

    def add(self, failed: bool, slow: bool, now: float) -> None:
        self.calls += 1
        if failed:
            self.failures += 1
            self.trailing_failures += 1
        else:
            self.had_success = True
            self.trailing_failures = 0
        if slow:
            self.slow += 1
        if self.outcomes.maxlen:
            self.outcomes.append((SLOW_FAIL_CHAR if slow else FAIL_CHAR) if failed else (SLOW_CHAR if slow else OK_CHAR))
        if self.width_s:
            bucket = self.buckets.get(int(now // self.width_s))
            if bucket is None:
                bucket = self.buckets[int(now // self.width_s)] = [0, 0, 0]
            bucket[0] += 1
            bucket[1] += failed
            bucket[2] += slow

    def __bool__(self) -> bool:
        return self.calls > 0

    @property
    def outcome_string(self) -> str:
        return "".join(self.outcomes)


@dataclass(frozen=True)
class Figures:
    calls: int = 0
    failures: int = 0
    slow: int = 0
    consecutive: int = 0

    @property
    def failure_rate_pct(self) -> float | None:
        return round(100.0 * self.failures / self.calls, 2) if self.calls else None

    @property
    def slow_rate_pct(self) -> float | None:
        return round(100.0 * self.slow / self.calls, 2) if self.calls else None


@dataclass(frozen=True)
class Transition:
    from_state: str
    to_state: str
    reason: str
    figures: Figures


@dataclass(frozen=True)
class SharedState:
    """What a process learns from the store: the state, when an open ends, the figures of the window, and
    whether call starts are gated (closed, but so few failures from opening that each start takes a ticket)."""

    state: str = CLOSED
    open_until: float = 0.0
    open_count: int = 0
    figures: Figures = Figures()
    transition: Transition | None = None
    gated: bool = False


@dataclass(frozen=True)
class Admission:
    """A process's part in the failure budget, sent with every gated call and every synchronous outcome.

    `in_flight` is how many of the process's calls started without a ticket (while the breaker was not
    gated) have not returned: the gate counts them against the budget, since each may yet fail. `seq`
    orders one process's reports, so a late-arriving older count never overwrites a newer one.
    `ticket` is the gate ticket to take (admit) or to give back with the call's outcome (merge).
    """

    process: str
    in_flight: int
    seq: int
    ticket: str | None = None


@dataclass
class BreakerRecord:
    """The whole shared record of one breaker, as the memory backend keeps it (Redis keeps the same in hashes).

    In half-open, `tickets` maps each probe ticket still out to the time it was granted, and the probe
    figures are the fresh window the probes are judged by. While closed and gated, `admits` holds the gate
    tickets out and `in_flight` each process's calls started before the gate, both counted against the budget.
    """

    state: str = CLOSED
    open_until: float = 0.0
    open_count: int = 0
    half_open_since: float = 0.0
    tickets: dict[str, float] = field(default_factory=dict)
    probe_calls: int = 0
    probe_failures: int = 0
    probe_slow: int = 0
    consecutive: int = 0
    outcomes: str = ""
    buckets: dict[int, list[int]] = field(default_factory=dict)
    gated: bool = False
    admits: dict[str, float] = field(default_factory=dict)  # gate tickets out -> granted at
    in_flight: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # process -> (calls, seq, at)

    def figures(self, config: BreakerConfig, now: float) -> Figures:
        if config.window_kind == "count":
            failures = self.outcomes.count(FAIL_CHAR) + self.outcomes.count(SLOW_FAIL_CHAR)
            slow = self.outcomes.count(SLOW_CHAR) + self.outcomes.count(SLOW_FAIL_CHAR)
            return Figures(len(self.outcomes), failures, slow, self.consecutive)
        self._expire_buckets(config, now)
        calls = sum(b[0] for b in self.buckets.values())
        return Figures(
            calls, sum(b[1] for b in self.buckets.values()), sum(b[2] for b in self.buckets.values()), self.consecutive
        )

    def probe_figures(self) -> Figures:
        return Figures(self.probe_calls, self.probe_failures, self.probe_slow, 0)

    def _expire_buckets(self, config: BreakerConfig, now: float) -> None:
        width = config.bucket_width_s
        oldest = int(now // width) - math.ceil(config.window_size / width) + 1
        for bucket in [b for b in self.buckets if b < oldest]:
            del self.buckets[bucket]

    def snapshot(self, config: BreakerConfig, now: float, transition: Transition | None = None) -> SharedState:
        figures = self.probe_figures() if self.state == HALF_OPEN else self.figures(config, now)
        return SharedState(self.state, self.open_until, self.open_count, figures, transition, self.gated)

    def _clear_window(self) -> None:
        self.outcomes = ""
        self.buckets = {}
        self.consecutive = 0

    def _clear_probes(self) -> None:
        self.tickets = {}
        self.probe_calls = self.probe_failures = self.probe_slow = 0

    def _clear_gate(self) -> None:
        self.gated = False
        self.admits = {}
        self.in_flight = {}

    def _open(self, config: BreakerConfig, now: float, reason: str, figures: Figures) -> Transition:
        previous = self.state
        self.state = OPEN
        self.open_count += 1
        self.open_until = now + config.open_duration_for(self.open_count)
        self._clear_probes()
        self._clear_gate()
        return Transition(previous, OPEN, reason, figures)

    def _half_open(self, config: BreakerConfig, now: float) -> Transition:
        figures = self.figures(config, now)
        self.state = HALF_OPEN
        self.half_open_since = now
        self._clear_probes()
        return Transition(OPEN, HALF_OPEN, f"open for {config.open_duration_for(self.open_count):g} s", figures)

    def _close(self, reason: str, figures: Figures) -> Transition:
        previous = self.state
        self.state = CLOSED
        self.open_count = 0
        self.open_until = 0.0
        self._clear_probes()
        self._clear_window()
        self._clear_gate()
        return Transition(previous, CLOSED, reason, figures)


def rates_reason(config: BreakerConfig, figures: Figures, prefix: str = "") -> str | None:
    """The failure or slow-call rate of `figures` reaching its threshold, or None (integer comparisons)."""
    if figures.failures * 10_000 >= config.failure_rate_bp * figures.calls:
        return (f"{prefix}failure rate {100 * figures.failures / figures.calls:.2f}% "
                f">= {config.failure_rate_bp / 100:g}%")
    if config.slow_rate_bp and figures.slow * 10_000 >= config.slow_rate_bp * figures.calls:
        return f"{prefix}slow-call rate {100 * figures.slow / figures.calls:.2f}% >= {config.slow_rate_bp / 100:g}%"
    return None


def trip_reason(config: BreakerConfig, figures: Figures) -> str | None:
    """Why the window should open the breaker, or None."""
    if config.consecutive_failures:
        if figures.consecutive >= config.consecutive_failures:
            return f"{figures.consecutive} consecutive failures (threshold {config.consecutive_failures})"
        return None
    if figures.calls < config.effective_minimum_calls:
        return None
    return rates_reason(config, figures)


def rates_computed(config: BreakerConfig, figures: Figures) -> bool:
    """False while the window holds fewer than the minimum calls (resilience4j reports its rates as -1 then)."""
    return bool(figures.calls) and figures.calls >= config.effective_minimum_calls


def failures_to_open(record: BreakerRecord, config: BreakerConfig, figures: Figures, limit: int) -> int | None:
    """How many more failures would open the closed breaker, if `limit` or fewer; None if more (or never).

    Count windows slide (each failure may push an old outcome out); time windows are taken as they are now.
    """
    if config.consecutive_failures:
        needed = config.consecutive_failures - figures.consecutive
        return needed if needed <= limit else None
    calls, failures, rate_bp = figures.calls, figures.failures, config.failure_rate_bp
    minimum = config.effective_minimum_calls
    if config.window_kind == "count":
        size, oldest, dropped_failures = config.window_size, record.outcomes, 0
        for needed in range(1, min(limit, size) + 1):
            total = calls + needed
            if total > size:
                dropped_failures += oldest[total - size - 1] in (FAIL_CHAR, SLOW_FAIL_CHAR)
            length = min(total, size)
            if length >= minimum and (failures + needed - dropped_failures) * 10_000 >= rate_bp * length:
                return needed
        return None
    if rate_bp >= 10_000:
        needed = max(1, minimum - calls) if failures >= calls else None
    else:
        needed = max(1, minimum - calls, -(-(rate_bp * calls - 10_000 * failures) // (10_000 - rate_bp)))
    return needed if needed is not None and needed <= limit else None


def _refresh_gate(record: BreakerRecord, config: BreakerConfig, figures: Figures, gate_budget: int) -> int | None:
    """Gate call starts while the closed breaker has failures counted and `gate_budget` or fewer would open it.

    Returns the budget (failures that would open it) while gated. Leaving the gate forgets the processes'
    in-flight counts: they are sent again with their next gated call.
    """
    budget = None
    evidence = figures.consecutive if config.consecutive_failures else figures.failures
    if record.state == CLOSED and not config.metrics_only and evidence:
        budget = failures_to_open(record, config, figures, gate_budget)
    record.gated = budget is not None
    if not record.gated:
        record.in_flight = {}
    return budget


def _register(record: BreakerRecord, admission: Admission, now: float) -> None:
    """Note the process's calls in flight (newer reports only) and take back the gate ticket it returns."""
    if admission.ticket is not None:
        record.admits.pop(admission.ticket, None)
    if record.state != CLOSED:
        return
    known = record.in_flight.get(admission.process)
    if known is None or admission.seq > known[1]:
        record.in_flight[admission.process] = (admission.in_flight, admission.seq, now)


def merge(
    record: BreakerRecord, config: BreakerConfig, batch: OutcomeBatch, now: float, *, gate_budget: int,
    admission: Admission | None = None,
) -> SharedState:
    """Add a process's batch to the shared window; outcomes of calls made while not closed are not counted.

    In metrics_only the window counts whatever the state and never opens the breaker. With `admission`
    (a synchronous outcome), the call's gate ticket is given back and the process's in-flight count noted.
    """
    if admission is not None:
        _register(record, admission, now)
    if (record.state != CLOSED and not config.metrics_only) or not batch:
        if record.state == CLOSED:
            _refresh_gate(record, config, record.figures(config, now), gate_budget)
        return record.snapshot(config, now)
    if batch.had_success:
        record.consecutive = batch.trailing_failures
    else:
        record.consecutive += batch.failures
    if config.window_kind == "count":
        record.outcomes = (record.outcomes + batch.outcome_string)[-config.window_size:]
    else:
        for bucket, (calls, failures, slow) in batch.buckets.items():
            mine = record.buckets.setdefault(bucket, [0, 0, 0])
            mine[0] += calls
            mine[1] += failures
            mine[2] += slow
    figures = record.figures(config, now)
    reason = None if config.metrics_only else trip_reason(config, figures)
    transition = record._open(config, now, reason, figures) if reason else None
    if transition is None:
        _refresh_gate(record, config, figures, gate_budget)
    return record.snapshot(config, now, transition)


def admit(
    record: BreakerRecord, config: BreakerConfig, now: float, admission: Admission, *, gate_budget: int,
    ticket_timeout_s: float,
) -> tuple[bool, SharedState]:
    """A gate ticket for one call start while gated: granted while the gate tickets out and the calls in
    flight of every process stay below the failure budget, atomically. Not granted when the breaker is no
    longer closed, or no longer gated (the caller then starts its call freely)."""
    transition = tick(record, config, now)
    if record.state != CLOSED:
        return False, record.snapshot(config, now, transition)
    _register(record, admission, now)
    budget = _refresh_gate(record, config, record.figures(config, now), gate_budget)
    if budget is None:
        return False, record.snapshot(config, now, transition)
    for ticket in [t for t, at in record.admits.items() if now - at >= ticket_timeout_s]:
        del record.admits[ticket]
    for process in [p for p, (_, _, at) in record.in_flight.items() if now - at >= ticket_timeout_s]:
        del record.in_flight[process]
    taken = len(record.admits) + sum(calls for calls, _, _ in record.in_flight.values())
    if taken >= budget:
        return False, record.snapshot(config, now, transition)
    record.admits[admission.ticket] = now
    return True, record.snapshot(config, now, transition)


def tick(record: BreakerRecord, config: BreakerConfig, now: float) -> Transition | None:
    """The transitions that time alone makes: the automatic open -> half-open, and the half-open max wait."""
    if config.automatic_transition and record.state == OPEN and now >= record.open_until:
        return record._half_open(config, now)
    if (
        record.state == HALF_OPEN and config.max_wait_in_half_open_s
        and now - record.half_open_since >= config.max_wait_in_half_open_s
    ):
        return record._open(config, now, f"half-open for {config.max_wait_in_half_open_s:g} s without a verdict",
                            record.probe_figures())
    return None


def read(record: BreakerRecord, config: BreakerConfig, now: float, *, gate_budget: int) -> SharedState:
    transition = tick(record, config, now)
    if record.state == CLOSED:
        _refresh_gate(record, config, record.figures(config, now), gate_budget)
    return record.snapshot(config, now, transition)


def _expire_tickets(record: BreakerRecord, now: float, probe_timeout_s: float) -> None:
    """Tickets never reported within the probe timeout are given back (a crashed prober cannot hold them)."""
    for ticket in [t for t, granted_at in record.tickets.items() if now - granted_at >= probe_timeout_s]:
        del record.tickets[ticket]


def acquire_probe(
    record: BreakerRecord, config: BreakerConfig, now: float, probe_timeout_s: float, ticket: str
) -> tuple[bool, SharedState]:
    """Grant the probe ticket `ticket` if one is left; moves an expired open to half-open first."""
    transition = tick(record, config, now)
    if record.state == OPEN and now >= record.open_until:
        transition = record._half_open(config, now)
    if record.state != HALF_OPEN:
        return False, record.snapshot(config, now, transition)
    _expire_tickets(record, now, probe_timeout_s)
    if len(record.tickets) + record.probe_calls >= config.half_open_probes:
        return False, record.snapshot(config, now, transition)
    record.tickets[ticket] = now
    return True, record.snapshot(config, now, transition)


def report_probe(
    record: BreakerRecord, config: BreakerConfig, *, ticket: str | None, outcome: str, slow: bool, now: float,
    probe_timeout_s: float,
) -> tuple[bool, SharedState]:
    """A probe's outcome, against a ticket still out (`None`: the oldest one); False if there is none.

    An ignored outcome gives its ticket back. In `first_failure` mode one failure opens again and all
    probes succeeding close; in `rates` mode (resilience4j) the probes are a fresh window judged by the
    failure and slow-call rates once every permitted probe has reported.
    """
    transition = tick(record, config, now)
    if record.state != HALF_OPEN:
        return False, record.snapshot(config, now, transition)
    _expire_tickets(record, now, probe_timeout_s)
    if ticket is None and record.tickets:
        ticket = min(record.tickets, key=record.tickets.__getitem__)
    if ticket not in record.tickets:
        return False, record.snapshot(config, now, transition)
    del record.tickets[ticket]
    if outcome == IGNORED:
        return True, record.snapshot(config, now)
    failed = outcome == FAILURE
    record.probe_calls += 1
    record.probe_failures += failed
    record.probe_slow += slow
    figures = record.probe_figures()
    if config.half_open_mode == "rates":
        if record.probe_calls < config.half_open_probes:
            return True, record.snapshot(config, now)
        reason = rates_reason(config, figures, prefix="half-open probes: ")
        if reason:
            return True, record.snapshot(config, now, record._open(config, now, reason, figures))
        return True, record.snapshot(config, now, record._close(
            f"{config.half_open_probes} probe(s) below the thresholds", figures))
    if failed:
        return True, record.snapshot(config, now, record._open(config, now, "half-open probe failed", figures))
    if record.probe_calls < config.half_open_probes:
        return True, record.snapshot(config, now)
    return True, record.snapshot(config, now, record._close(f"{config.half_open_probes} probe(s) succeeded", figures))


def reset(record: BreakerRecord, config: BreakerConfig, now: float, reason: str = "reset by an operator") -> SharedState:
    """Operator reset (and entering metrics only): closed, empty window, open history forgotten."""
    transition = record._close(reason, record.figures(config, now))
    return record.snapshot(config, now, transition)
