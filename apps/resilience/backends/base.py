"""The contract every breaker backend keeps; `tests/resilience/test_backends.py` runs it against each one."""
from __future__ import annotations

import threading
from collections.abc import Callable

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
        """The shared state, after the transitions time alone makes (automatic half-open, half-open max wait)."""
        raise NotImplementedError

    def acquire_probe(
        self, key: str, config: BreakerConfig, now: float, probe_timeout_s: float, ticket: str
    ) -> tuple[bool, SharedState]:
        """Move an expired open to half-open and grant the probe ticket `ticket` if one is left, atomically."""
        raise NotImplementedError

    def report_probe(
        self, key: str, config: BreakerConfig, *, ticket: str | None, outcome: str, slow: bool, now: float,
        probe_timeout_s: float,
    ) -> tuple[bool, SharedState]:
        """Count a probe's outcome against its ticket; False when the ticket expired or is unknown."""
        raise NotImplementedError

    def reset(self, key: str, config: BreakerConfig, now: float, reason: str = "reset by an operator") -> SharedState:
        raise NotImplementedError

    def bulkhead_acquire(self, key: str, *, limit: int, lease_s: float, now: float) -> str | None:
        """A slot token if fewer than `limit` are held (expired leases do not count), else None."""
        raise NotImplementedError

    def bulkhead_release(self, key: str, token: str) -> None:
        raise NotImplementedError


class PushesTransitions:
    """Optional capability of a shared backend: every transition is pushed to every process as it happens."""

    def channel(self, key: str) -> str:
        """The name transitions of breaker `key` are pushed under."""
        raise NotImplementedError

    def listen(self, on_transition: Callable[[str, str, float], None], stopping: threading.Event) -> None:
        """Block, calling `on_transition(channel, state, open_until)` per transition, until `stopping` is set."""
        raise NotImplementedError
