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
    failure_rate_threshold_pct: int = 50
    slow_call_duration_s: float = 2.0
    slow_call_rate_threshold_pct: int | None = None
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
    policy_id: int | None = None

    @classmethod
    def from_policy(cls, policy: Any) -> BreakerConfig:
        return cls(
            name=policy.name,
            window_kind=policy.window_kind,
            window_size=policy.window_size,
            failure_rate_threshold_pct=policy.failure_rate_threshold_pct,
            slow_call_duration_s=policy.slow_call_duration_ms / 1000.0,
            slow_call_rate_threshold_pct=policy.slow_call_rate_threshold_pct,
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
            policy_id=policy.pk,
        )

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
    """What a process learns from the store: the state, when an open ends, and the figures of the window."""

    state: str = CLOSED
    open_until: float = 0.0
    open_count: int = 0
    figures: Figures = Figures()
    transition: Transition | None = None


@dataclass
class BreakerRecord:
    """The whole shared record of one breaker, as the memory backend keeps it (Redis keeps the same in hashes)."""

    state: str = CLOSED
    open_until: float = 0.0
    open_count: int = 0
    probes_granted: int = 0
    probes_succeeded: int = 0
    last_grant_at: float = 0.0
    consecutive: int = 0
    outcomes: str = ""
    buckets: dict[int, list[int]] = field(default_factory=dict)

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

    def _expire_buckets(self, config: BreakerConfig, now: float) -> None:
        width = config.bucket_width_s
        oldest = int(now // width) - math.ceil(config.window_size / width) + 1
        for bucket in [b for b in self.buckets if b < oldest]:
            del self.buckets[bucket]

    def snapshot(self, config: BreakerConfig, now: float, transition: Transition | None = None) -> SharedState:
        return SharedState(self.state, self.open_until, self.open_count, self.figures(config, now), transition)

    def _clear_window(self) -> None:
        self.outcomes = ""
        self.buckets = {}
        self.consecutive = 0

    def _open(self, config: BreakerConfig, now: float, reason: str, figures: Figures) -> Transition:
        previous = self.state
        self.state = OPEN
        self.open_count += 1
        self.open_until = now + config.open_duration_for(self.open_count)
        self.probes_granted = self.probes_succeeded = 0
        return Transition(previous, OPEN, reason, figures)


def trip_reason(config: BreakerConfig, figures: Figures) -> str | None:
    """Why the window should open the breaker, or None."""
    if config.consecutive_failures:
        if figures.consecutive >= config.consecutive_failures:
            return f"{figures.consecutive} consecutive failures (threshold {config.consecutive_failures})"
        return None
    if figures.calls < config.minimum_calls:
        return None
    # Integer comparisons, so Python and Lua agree exactly at the boundary.
    if figures.failures * 100 >= config.failure_rate_threshold_pct * figures.calls:
        return f"failure rate {100 * figures.failures / figures.calls:.2f}% >= {config.failure_rate_threshold_pct}%"
    slow_pct = config.slow_call_rate_threshold_pct
    if slow_pct and figures.slow * 100 >= slow_pct * figures.calls:
        return f"slow-call rate {100 * figures.slow / figures.calls:.2f}% >= {slow_pct}%"
    return None


def merge(record: BreakerRecord, config: BreakerConfig, batch: OutcomeBatch, now: float) -> SharedState:
    """Add a process's batch to the shared window; outcomes of calls made while not closed are not counted."""
    if record.state != CLOSED or not batch:
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
    reason = trip_reason(config, figures)
    transition = record._open(config, now, reason, figures) if reason else None
    return record.snapshot(config, now, transition)


def acquire_probe(record: BreakerRecord, config: BreakerConfig, now: float, probe_timeout_s: float) -> tuple[bool, SharedState]:
    """Grant a half-open probe ticket if one is left; moves an expired open to half-open first."""
    transition = None
    if record.state == OPEN and now >= record.open_until:
        figures = record.figures(config, now)
        record.state = HALF_OPEN
        record.probes_granted = record.probes_succeeded = 0
        transition = Transition(OPEN, HALF_OPEN, f"open for {config.open_duration_for(record.open_count):g} s", figures)
    if record.state != HALF_OPEN:
        return False, record.snapshot(config, now, transition)
    if record.probes_granted >= config.half_open_probes and now - record.last_grant_at >= probe_timeout_s:
        record.probes_granted = record.probes_succeeded  # tickets never reported are given back
    if record.probes_granted >= config.half_open_probes:
        return False, record.snapshot(config, now, transition)
    record.probes_granted += 1
    record.last_grant_at = now
    return True, record.snapshot(config, now, transition)


def report_probe(record: BreakerRecord, config: BreakerConfig, *, failed: bool, now: float) -> SharedState:
    """A probe's outcome: one failure opens again (for longer if growth is set); all probes good close.

    A success counts only against a ticket still out: the report API takes `probe` from the caller.
    """
    if record.state != HALF_OPEN or (not failed and record.probes_succeeded >= record.probes_granted):
        return record.snapshot(config, now)
    figures = Figures(record.probes_succeeded + 1, int(failed), 0, 0)
    if failed:
        return record.snapshot(config, now, record._open(config, now, "half-open probe failed", figures))
    record.probes_succeeded += 1
    if record.probes_succeeded < config.half_open_probes:
        return record.snapshot(config, now)
    record.state = CLOSED
    record.open_count = 0
    record.open_until = 0.0
    record.probes_granted = record.probes_succeeded = 0
    record._clear_window()
    transition = Transition(HALF_OPEN, CLOSED, f"{config.half_open_probes} probe(s) succeeded", figures)
    return record.snapshot(config, now, transition)


def reset(record: BreakerRecord, config: BreakerConfig, now: float) -> SharedState:
    """Operator reset: closed, empty window, open history forgotten."""
    previous = record.state
    figures = record.figures(config, now)
    record.state = CLOSED
    record.open_until = 0.0
    record.open_count = record.probes_granted = record.probes_succeeded = 0
    record._clear_window()
    transition = Transition(previous, CLOSED, "reset by an operator", figures)
    return record.snapshot(config, now, transition)
