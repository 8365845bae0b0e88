"""Counters kept in memory and flushed in batches by a background thread, never written per request."""
from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class BatchedCounters:
    """`add(key, field)` is a dict update under a lock; `flush(batch)` receives {key: Counter} every interval.

    A crash loses at most one interval. A failing flush puts the batch back so nothing is dropped
    while the database is briefly unavailable.
    """

    def __init__(self, name: str, flush: Callable[[dict[Hashable, Counter]], None], *, interval_s: float = 5.0):
        self.name = name
        self._flush = flush
        self.interval_s = interval_s
        self._pending: dict[Hashable, Counter] = defaultdict(Counter)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, key: Hashable, field: str, n: int = 1) -> None:
        with self._lock:
            self._pending[key][field] += n
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"bulwark-flush-{self.name}", daemon=True)
            self._thread.start()
            atexit.register(self.flush_now)

    def _run(self) -> None:
        from django.db import close_old_connections

        while not self._stop.wait(self.interval_s):
            self.flush_now()
            close_old_connections()

    def take(self) -> dict[Hashable, Counter]:
        with self._lock:
            batch, self._pending = self._pending, defaultdict(Counter)
        return batch

    def flush_now(self) -> None:
        batch = self.take()
        if not batch:
            return
        try:
            self._flush(batch)
        except Exception:
            log.warning("flush of %s failed; keeping %d keys for the next one", self.name, len(batch), exc_info=True)
            with self._lock:
                for key, counts in batch.items():
                    self._pending[key].update(counts)
