"""The contract every breaker backend keeps; `tests/resilience/test_backends.py` runs it against each one."""
from __future__ import annotations

from apps.resilience.machine import BreakerConfig, OutcomeBatch, SharedState


class BreakerBackend:
    """The shared record of each breaker, keyed by `key` (tenant and dependency), with atomic transitions.

    `now` is passed in (seconds) so every backend runs on the caller's clock. A backend whose store cannot
    be reached raises core's StoreUnavailable (the registry then continues on a process-local fallback).
    """

    def merge(self, key: str, config: BreakerConfig, batch: OutcomeBatch, now: float) -> SharedState:
        """Add a batch of outcomes to the window; may open the breaker."""
        raise NotImplementedError

    def read(self, key: str, config: BreakerConfig, now: float) -> SharedState:
        raise NotImplementedError

    def acquire_probe(
        self, key: str, config: BreakerConfig, now: float, probe_timeout_s: float
    ) -> tuple[bool, SharedState]:
        """Move an expired open to half-open and grant one of its probe tickets, atomically across processes."""
        raise NotImplementedError

    def report_probe(self, key: str, config: BreakerConfig, *, failed: bool, now: float) -> SharedState:
        raise NotImplementedError

    def reset(self, key: str, config: BreakerConfig, now: float) -> SharedState:
        raise NotImplementedError

    def bulkhead_acquire(self, key: str, *, limit: int, lease_s: float, now: float) -> str | None:
        """A slot token if fewer than `limit` are held (expired leases do not count), else None."""
        raise NotImplementedError

    def bulkhead_release(self, key: str, token: str) -> None:
        raise NotImplementedError
