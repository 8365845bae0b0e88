"""The one stats pipeline: apps count in memory, one flusher thread per process drains every sink in batches.

An app registers a sink once (`stats.register("ratelimit.decisions", sink, start=False)`). A sink collects
cheaply in memory under its own lock and, when asked, `flush(now)` drains what it holds to its store in one
round trip. The flusher thread calls every registered sink, in the order they registered, every
`BULWARK["CORE"]["STATS_FLUSH_INTERVAL_S"]`, at process exit, and can be called by hand (`flush_all(now=...)`,
tests, jobs and pages that show a process its own counts). A crash loses what arrived since the last flush:
at most one interval. A sink whose store fails keeps its batch for the next flush (`BufferedSink` does), so a
short outage loses nothing.

The thread starts with the first count of a process (`ensure_started()`, one attribute check once running;
a forked child starts its own), so `migrate` and other commands that count nothing get no thread. Tests set
`pipeline.background = False` and flush by hand: a thread would write outside the test's transaction.

Time is read through `clock`, core's `Clock` (default `SYSTEM_CLOCK`).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol

from apps.core.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from apps.core.conf import AppSettings

log = logging.getLogger(__name__)
THREAD_NAME = "bulwark-stats-flusher"


class Sink(Protocol):
    def flush(self, now: float) -> None:
        """Drain what was collected to the store in one round trip; keep it on failure."""


class Pipeline:
    """Registered sinks and the one thread that flushes them."""

    def __init__(self, *, interval_s: Callable[[], float] | float | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._interval_s = interval_s
        self.clock = clock
        self._sinks: dict[str, Sink] = {}
        # Earlier per-app interval settings, read while set (deprecated): {sink name: (section, key)}.
        self._interval_aliases: dict[str, tuple[AppSettings, str]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._atexit = False
        self.running = False  # the hot path's check: a plain attribute, reset in a forked child
        self.background = True
        self.flushes = 0
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    @property
    def interval_s(self) -> float:
        """Core's interval, or the shortest deprecated per-app interval that is still set."""
        if self._interval_s is not None:
            return float(self._interval_s() if callable(self._interval_s) else self._interval_s)
        legacy = [v for v in (getattr(section, key) for section, key in self._interval_aliases.values())
                  if v is not None]
        if legacy:
            return float(min(legacy))
        from apps.core.conf import core_settings

        return float(core_settings.STATS_FLUSH_INTERVAL_S)

    def register(self, name: str, sink: Sink, *, start: bool = True,
                 interval_alias: tuple[AppSettings, str] | None = None) -> Sink:
        """Add (or replace) the sink called `name`; starts this process's flusher unless `start=False`
        (an app registering at import time lets its first count start it, so `migrate` gets no thread).
        `interval_alias` names the app's earlier flush-interval setting, still honoured while set."""
        with self._lock:
            self._sinks[name] = sink
            if interval_alias is not None:
                self._interval_aliases[name] = interval_alias
        if start:
            self.ensure_started()
        return sink

    def unregister(self, name: str) -> None:
        with self._lock:
            self._sinks.pop(name, None)
            self._interval_aliases.pop(name, None)

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
        """Start the flusher once per process (a forked child starts its own: threads do not survive fork).
        Cheap enough for the hot path once running: one attribute check."""
        if self.running or not self.background:
            return
        with self._lock:
            if self.running:
                return
            self._stop_event = threading.Event()  # each thread its own: a slow old one cannot be revived
            self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name=THREAD_NAME,
                                            daemon=True)
            self._thread.start()
            self.running = True
            if not self._atexit:
                atexit.register(self.flush_all)
                self._atexit = True

    def stop(self, *, flush: bool = False) -> None:
        """Stop this process's flusher (tests; a host shutting down cleanly), flushing once more if asked."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop_event.set()
            self.running = False
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        if flush:
            self.flush_all()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self.running = False

    def _run(self, stop: threading.Event) -> None:
        from django.db import connections

        while not stop.wait(self.interval_s):
            self.flush_all()
            # The flusher writes every few seconds: holding its connections in between would keep a database
            # session open per process for nothing (and block dropping a test database).
            connections.close_all()


pipeline = Pipeline()


def register(name: str, sink: Sink, *, start: bool = True,
             interval_alias: tuple[AppSettings, str] | None = None) -> Sink:
    return pipeline.register(name, sink, start=start, interval_alias=interval_alias)


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
