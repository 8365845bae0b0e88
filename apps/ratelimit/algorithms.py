"""The limiting algorithms as pure functions of (state, now): GCRA with burst, the (approximate) sliding
window and the exact moving window.

Time is an integer number of microseconds passed in by the caller, so tests move it by hand and the
Redis script (backends/lua/decide.lua), which implements the same admission rule, agrees to the
microsecond. State is a tuple: GCRA keeps its theoretical arrival time `(tat_us,)`; the sliding
window keeps `(window_start_us, current_count, previous_count)`; the moving window keeps the log of
admission times still inside the window, oldest first (at most `capacity` of them).

The functions never mutate; they return the outcome and the state to store *if* the request is
admitted (a request refused by another policy of the same decision stores nothing anywhere).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

GCRA = "gcra"
SLIDING_WINDOW = "sliding_window"
MOVING_WINDOW = "moving_window"

State = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Limit:
    """What one policy allows. `capacity` is the burst (GCRA) or the count per window (sliding window);
    `interval_us` is the emission interval (GCRA: period / rate) or the window length."""

    algorithm: str
    capacity: int
    interval_us: int

    @classmethod
    def gcra(cls, *, rate: int, period_s: int, burst: int) -> Limit:
        # Floor to whole microseconds: at most 1 µs per request faster than asked, and the Lua script
        # does integer arithmetic (exact in doubles below 2**53 µs, i.e. for 285 years of epoch time).
        return cls(GCRA, burst, max(1, period_s * 1_000_000 // rate))

    @classmethod
    def sliding_window(cls, *, rate: int, period_s: int) -> Limit:
        return cls(SLIDING_WINDOW, rate, period_s * 1_000_000)

    @classmethod
    def moving_window(cls, *, rate: int, period_s: int) -> Limit:
        return cls(MOVING_WINDOW, rate, period_s * 1_000_000)

    @property
    def quota_window_s(self) -> int:
        """The `w` of RateLimit-Policy: the time in which `capacity` units are granted afresh."""
        span_us = self.capacity * self.interval_us if self.algorithm == GCRA else self.interval_us
        return max(1, round(span_us / 1_000_000))


def whole_seconds(us: int) -> int:
    """Microseconds as whole seconds, rounded up: every figure sent in seconds is rounded the same way."""
    return -(-us // 1_000_000)


@dataclass(frozen=True, slots=True)
class Outcome:
    """`reset_us`: until the quota is whole again; `retry_after_us`: until this request would pass (0 when
    allowed); `window_us`: the effective window of an allowed answer, the time within which no more than
    `remaining` units can pass (draft-ietf-httpapi-ratelimit-headers-11, 4.1.2), i.e. until `remaining` grows."""

    allowed: bool
    limit: int
    remaining: int
    reset_us: int
    retry_after_us: int
    window_us: int = 0

    @property
    def reset_s(self) -> int:
        return whole_seconds(self.reset_us)

    @property
    def retry_after_s(self) -> int:
        """Whole seconds for Retry-After: rounded up, at least 1 on a refusal."""
        return 0 if self.allowed else max(1, whole_seconds(self.retry_after_us))

    @property
    def window_s(self) -> int:
        """The `t` of the RateLimit field: on a refusal the same moment as Retry-After (-11, section 6)."""
        return whole_seconds(self.window_us) if self.allowed else self.retry_after_s


def gcra(limit: Limit, state: State | None, now_us: int, cost: int) -> tuple[Outcome, State]:
    interval, burst = limit.interval_us, limit.capacity
    tat = max(state[0], now_us) if state else now_us
    new_tat = tat + cost * interval
    allow_at = new_tat - burst * interval
    if now_us < allow_at:
        remaining = max(0, (now_us - (tat - burst * interval)) // interval)
        return Outcome(False, burst, remaining, tat - now_us, allow_at - now_us), (tat,)
    remaining = (now_us - allow_at) // interval
    next_unit_us = (remaining + 1) * interval - (now_us - allow_at)  # when one more unit has dripped in
    return Outcome(True, burst, remaining, new_tat - now_us, 0, next_unit_us), (new_tat,)


def sliding_window(limit: Limit, state: State | None, now_us: int, cost: int) -> tuple[Outcome, State]:
    """Two fixed windows weighted by overlap (the estimate Cloudflare uses): O(1) memory per key and no
    doubled burst at a window boundary, unlike a fixed window. Approximate: it does not cap every rolling
    window (at 10/s, 10 hits late in one window then steady hits can pass 19 within one second); use GCRA
    or the moving window for a strict limit."""
    window, capacity = limit.interval_us, limit.capacity
    start = now_us - now_us % window
    current, previous = 0, 0
    if state:
        if state[0] == start:
            current, previous = state[1], state[2]
        elif state[0] == start - window:
            previous = state[1]
    elapsed = now_us - start
    # Float arithmetic in this exact order: the Lua script computes the same doubles.
    weighted_previous = float(previous) * float(window - elapsed) / float(window)
    reset_us = window - elapsed
    if weighted_previous + current + cost <= capacity:
        current += cost
        remaining = max(0, math.floor(capacity - (weighted_previous + current)))
        # `remaining` grows when the previous window's weight falls to `spare`; never within this window
        # when this window's own count is what binds.
        spare = capacity - current - remaining - 1
        if previous and spare >= 0:
            window_us = max(1, math.ceil(window - spare * window / previous) - elapsed)
        else:
            window_us = reset_us
        return Outcome(True, capacity, remaining, reset_us, 0, window_us), (start, current, previous)
    remaining = max(0, math.floor(capacity - (weighted_previous + current)))
    if current + cost <= capacity:
        # The previous window's weight must fall far enough within this window.
        must_elapse = window - (capacity - current - cost) * window / previous
        retry_us = math.ceil(must_elapse) - elapsed
    elif cost <= capacity:
        # This window is spent: wait for the next, where this window's count weighs as the previous one.
        into_next = window - (capacity - cost) * window / current if current else 0
        retry_us = reset_us + math.ceil(into_next)
    else:
        retry_us = reset_us + window  # can never pass; tell the client to stop for a while
    return Outcome(False, capacity, remaining, reset_us, max(1, retry_us)), (start, current, previous)


def moving_window(limit: Limit, state: State | None, now_us: int, cost: int) -> tuple[Outcome, State]:
    """Exact: a log of admission times; a unit passes only if fewer than `capacity` units passed in the
    half-open window (now - window, now]. Memory per key is bounded by the capacity."""
    window, capacity = limit.interval_us, limit.capacity
    log = tuple(t for t in state or () if t > now_us - window)
    count = len(log)
    if count + cost <= capacity:
        log += (now_us,) * cost
        if not log:
            return Outcome(True, capacity, capacity, 0, 0, 0), log
        # Each entry leaves the window `window` after it came: the oldest first gives a unit back.
        return Outcome(True, capacity, capacity - len(log), log[-1] + window - now_us, 0,
                       log[0] + window - now_us), log
    reset_us = log[-1] + window - now_us if log else 0
    # Enough of the oldest must leave; a cost above the capacity never passes: stop for a window.
    retry_us = log[count + cost - capacity - 1] + window - now_us if cost <= capacity else window
    return Outcome(False, capacity, max(0, capacity - count), reset_us, retry_us), log


ALGORITHMS = {GCRA: gcra, SLIDING_WINDOW: sliding_window, MOVING_WINDOW: moving_window}


def evaluate(limit: Limit, state: State | None, now_us: int, cost: int) -> tuple[Outcome, State]:
    return ALGORITHMS[limit.algorithm](limit, state, now_us, cost)


def state_ttl_us(limit: Limit, state: State, now_us: int) -> int:
    """How long a stored state matters; after that it is the same as no state, so the key may expire."""
    if limit.algorithm == GCRA:
        return max(1, state[0] - now_us)
    if limit.algorithm == MOVING_WINDOW:
        return max(1, state[-1] + limit.interval_us - now_us) if state else 1
    return max(1, state[0] + 2 * limit.interval_us - now_us)
