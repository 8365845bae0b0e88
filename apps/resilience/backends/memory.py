"""Breaker records in this process's memory: the embedded default, and every process's fallback when Redis is down."""
from __future__ import annotations

import threading
import uuid

from apps.resilience import machine
from apps.resilience.backends.base import BreakerBackend, gate_budget
from apps.resilience.machine import Admission, BreakerConfig, BreakerRecord, OutcomeBatch, SharedState


class MemoryBackend(BreakerBackend):
    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _record(self, key: str) -> BreakerRecord:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = BreakerRecord()
        return record

    def merge(
        self, key: str, config: BreakerConfig, batch: OutcomeBatch, now: float, admission: Admission | None = None
    ) -> SharedState:
        with self._lock:
            return machine.merge(self._record(key), config, batch, now, gate_budget=gate_budget(),
                                 admission=admission)

    def read(self, key: str, config: BreakerConfig, now: float) -> SharedState:
        with self._lock:
            return machine.read(self._record(key), config, now, gate_budget=gate_budget())

    def admit(
        self, key: str, config: BreakerConfig, now: float, admission: Admission, ticket_timeout_s: float
    ) -> tuple[bool, SharedState]:
        with self._lock:
            return machine.admit(self._record(key), config, now, admission, gate_budget=gate_budget(),
                                 ticket_timeout_s=ticket_timeout_s)

    def acquire_probe(
        self, key: str, config: BreakerConfig, now: float, probe_timeout_s: float, ticket: str
    ) -> tuple[bool, SharedState]:
        with self._lock:
            return machine.acquire_probe(self._record(key), config, now, probe_timeout_s, ticket)

    def report_probe(
        self, key: str, config: BreakerConfig, *, ticket: str | None, outcome: str, slow: bool, now: float,
        probe_timeout_s: float,
    ) -> tuple[bool, SharedState]:
        with self._lock:
            return machine.report_probe(self._record(key), config, ticket=ticket, outcome=outcome, slow=slow,
                                        now=now, probe_timeout_s=probe_timeout_s)

    def reset(self, key: str, config: BreakerConfig, now: float, reason: str = "reset by an operator") -> SharedState:
        with self._lock:
            return machine.reset(self._record(key), config, now, reason)

    def adopt(self, key: str, state: SharedState) -> None:
        """Seed a record from the shared state last seen (the fallback starts where Redis left off)."""
        with self._lock:
            record = self._record(key)
            record.state, record.open_until, record.open_count = state.state, state.open_until, state.open_count

    def bulkhead_acquire(self, key: str, *, limit: int, lease_s: float, now: float) -> str | None:
        with self._lock:
            slots = self._slots.setdefault(key, {})
            for token in [t for t, expires in slots.items() if expires <= now]:
                del slots[token]
            if len(slots) >= limit:
                return None
            token = uuid.uuid4().hex
            slots[token] = now + lease_s
            return token

    def bulkhead_release(self, key: str, token: str) -> None:
        with self._lock:
            self._slots.get(key, {}).pop(token, None)
