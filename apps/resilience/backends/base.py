"""The contract every breaker backend keeps; `tests/resilience/test_backends.py` runs it against each one."""
from __future__ import annotations

import threading
from collections.abc import Callable

from apps.resilience.conf import resilience_settings
from apps.resilience.machine import Admission, BreakerConfig, OutcomeBatch, SharedState


class BreakerBackend:
    """The shared record of each breaker, keyed by `key` (tenant and dependency), with atomic transitions.

    `now` is passed in (seconds) so every backend runs on the caller's clock. A backend whose store cannot
    be reached raises core's StoreUnavailable (the registry then continues on a process-local fallback).
    """

    def merge(
        self, key: str, config: BreakerConfig, batch: OutcomeBatch, now: float, admission: Admission | None = None
    ) -> SharedState:
        """Add a batch of outcomes to the window; may open the breaker, or gate it. With `admission` (an outcome
        reported as it returns), give back the call's gate ticket and note the process's calls in flight."""
        raise NotImplementedError

    def read(self, key: str, config: BreakerConfig, now: float) -> SharedState:
        """The shared state, after the transitions time alone makes (automatic half-open, half-open max wait)."""
        raise NotImplementedError

    def admit(
        self, key: str, config: BreakerConfig, now: float, admission: Admission, ticket_timeout_s: float
    ) -> tuple[bool, SharedState]:
        """While gated, grant the gate ticket `admission.ticket` if the tickets out plus every process's calls
        in flight stay below the failure budget, atomically; tickets and counts older than the timeout lapse."""
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


def gate_budget() -> int:
    """`GATE_BUDGET`, read per operation so every backend follows a settings change at once."""
    return resilience_settings.GATE_BUDGET


class PushesTransitions:
    """Optional capability of a shared backend: every transition is pushed to every process as it happens."""

    def channel(self, key: str) -> str:
        """The name transitions of breaker `key` are pushed under."""
        raise NotImplementedError

    def listen(self, on_transition: Callable[[str, str, float, bool], None], stopping: threading.Event) -> None:
        """Block, calling `on_transition(channel, state, open_until, gated)` per transition (a gate opened or
        lifted included), until `stopping` is set."""
        raise NotImplementedError
