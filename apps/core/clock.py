"""The one clock of the hot path: monotonic and wall time, in seconds and in integer microseconds.

Everything that reads time takes a `Clock` (default `SYSTEM_CLOCK`) so a test moves time by hand with a
`FakeClock` instead of sleeping. It covers the four earlier conventions: ratelimit's microsecond wall time
for the algorithms and Lua scripts (`time_us`), caching's and resilience's wall seconds (`time`),
outage guards and snapshot checks (`monotonic`), retry back-off (`sleep`), and the CPU time a request's
thread spent (`thread_time`, monitoring's request observers).
"""
from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for intervals and deadlines."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch: for what is stored or compared across processes."""
        ...

    def monotonic_us(self) -> int:
        ...

    def time_us(self) -> int:
        ...

    def sleep(self, seconds: float) -> None:
        ...

    def thread_time(self) -> float:
        """CPU seconds (user + system) the calling thread has used: what one request costs the process."""
        ...


class SystemClock:
    """The real clocks. The methods are the C builtins themselves (no Python frame per call on the hot path)."""

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)
    thread_time = staticmethod(_time.thread_time)

    @staticmethod
    def monotonic_us() -> int:
        return _time.monotonic_ns() // 1000

    @staticmethod
    def time_us() -> int:
        return _time.time_ns() // 1000


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that moves only when told (`advance`, or `sleep`, which advances instead of waiting).

    Time is kept in integer microseconds so the seconds and microsecond readings always agree. CPU time moves
    only with `advance_cpu` (waiting costs no CPU).
    """

    def __init__(self, *, time: float = 1_700_000_000.0, monotonic: float = 1_000.0) -> None:
        self._wall_us = round(time * 1_000_000)
        self._mono_us = round(monotonic * 1_000_000)
        self._cpu_us = 0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        step = round(seconds * 1_000_000)
        with self._lock:
            self._wall_us += step
            self._mono_us += step

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def advance_cpu(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("CPU time does not go back")
        with self._lock:
            self._cpu_us += round(seconds * 1_000_000)

    def thread_time(self) -> float:
        return self._cpu_us / 1_000_000

    def monotonic(self) -> float:
        return self._mono_us / 1_000_000

    def time(self) -> float:
        return self._wall_us / 1_000_000

    def monotonic_us(self) -> int:
        return self._mono_us

    def time_us(self) -> int:
        return self._wall_us
