"""The one stats pipeline: apps count in memory, one flusher thread per process drains every sink in batches.

An app registers a sink once (`stats.register("monitoring.requests", sink)`). A sink collects cheaply in
memory under its own lock and, when asked, `flush(now)` drains what it holds to its store in one round
trip. The flusher thread calls every registered sink every `BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"]`,
at process exit, and can be called by hand (`flush_all(now=...)`, tests and jobs). A crash loses what
arrived since the last flush: at most one interval. A sink whose store fails keeps its batch for the next
flush (`CounterSink` does), so a short outage loses nothing.

Time is read through `clock`, core's `Clock` (default `SYSTEM_CLOCK`).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from typing import Protocol

from apps.core.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class Sink(Protocol):
    def flush(self, now: float) -> None:
        """Drain what was collected to the store in one round trip; keep it on failure."""


class Pipeline:
    """Registered sinks and the one thread that flushes them."""

    def __init__(self, *, interval_s: Callable[[], float] | float | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._interval_s = interval_s
        self.clock = clock
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._wake = threading.Event()
        self.flushes = 0

    @property
    def interval_s(self) -> float:
        if self._interval_s is None:
            from apps.core.conf import core_settings

            return float(core_settings.STATS_FLUSH_INTERVAL_S)
        return float(self._interval_s() if callable(self._interval_s) else self._interval_s)

    def register(self, name: str, sink: Sink, *, start: bool = True) -> Sink:
        """Add (or replace) the sink called `name`; starts this process's flusher unless `start=False`
        (an app registering at import time lets its first request start it, so `migrate` gets no thread)."""
        with self._lock:
            self._sinks[name] = sink
        if start:
            self.ensure_started()
        return sink

    def unregister(self, name: str) -> None:
        with self._lock:
            self._sinks.pop(name, None)

    def sinks(self) -> dict[str, Sink]:
        return dict(self._sinks)

    def flush_all(self, now: float | None = None) -> None:
        """Flush every sink once; one failing sink does not stop the others."""
        now = self.clock.time() if now is None else now
        for name, sink in list(self._sinks.items()):
            try:
                sink.flush(now)
            except Exception:
                log.warning("stats sink %s failed to flush; it keeps its batch", name, exc_info=True)
        self.flushes += 1

    def ensure_started(self) -> None:
        """Start the flusher once per process (a forked child starts its own: threads do not survive fork)."""
        pid = os.getpid()
        if self._pid == pid and self._thread is not None:
            return
        with self._lock:
            if self._pid == pid and self._thread is not None:
                return
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name="bulwark-stats-flusher", daemon=True)
            self._thread.start()
        atexit.register(self.flush_all)

    def _run(self) -> None:
        from django.db import close_old_connections

        while not self._wake.wait(self.interval_s):
            self.flush_all()
            close_old_connections()


pipeline = Pipeline()


def register(name: str, sink: Sink, *, start: bool = True) -> Sink:
    return pipeline.register(name, sink, start=start)


def flush_all(now: float | None = None) -> None:
    pipeline.flush_all(now)


class BufferedSink:
    """A sink that buffers in memory: `take()` empties the buffer, `write(batch, now)` stores it in one round
    trip, `restore(batch)` merges a batch whose write failed back in (nothing dropped while the store is down)."""

    def take(self):
        raise NotImplementedError

    def write(self, batch, now: float) -> None:
        raise NotImplementedError

    def restore(self, batch) -> None:
        raise NotImplementedError

    def flush(self, now: float) -> None:
        batch = self.take()
        if not batch:
            return
        try:
            self.write(batch, now)
        except Exception:
            self.restore(batch)
            raise


class CounterSink(BufferedSink):
    """The common sink: `add(key, field, n)` sums under a lock; `write` stores {key: Counter}."""

    def __init__(self, write: Callable[[dict[Hashable, Counter], float], None]) -> None:
        self._write = write
        self._pending: dict[Hashable, Counter] = defaultdict(Counter)
        self._lock = threading.Lock()

    def add(self, key: Hashable, field: str, n: int | float = 1) -> None:
        with self._lock:
            self._pending[key][field] += n

    def take(self) -> dict[Hashable, Counter]:
        with self._lock:
            batch, self._pending = self._pending, defaultdict(Counter)
        return batch

    def write(self, batch: dict[Hashable, Counter], now: float) -> None:
        self._write(batch, now)

    def restore(self, batch: dict[Hashable, Counter]) -> None:
        with self._lock:
            for key, counts in batch.items():
                self._pending[key].update(counts)
