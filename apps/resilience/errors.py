"""Exceptions raised to callers when a protected call is refused or cut short."""
from __future__ import annotations


class ResilienceError(Exception):
    """Base of every refusal by the resilience layer (a view raising it can be served stale by the cache)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class BreakerOpen(ResilienceError):
    """The breaker of `name` rejected the call: open, forced open, half-open with every probe taken, or closed
    but gated with its failure budget taken by the failures and calls in flight (state "closed")."""

    def __init__(self, name: str, *, state: str, retry_after_s: float | None = None) -> None:
        hint = f"; retry in {retry_after_s:.1f} s" if retry_after_s else ""
        if state == "closed":
            message = (f"Circuit breaker {name!r} is closed, but failures and calls in flight already take its "
                       f"whole failure budget{hint}.")
        else:
            message = f"Circuit breaker {name!r} is {state}{hint}."
        super().__init__(message, name=name)
        self.state = state
        self.retry_after_s = retry_after_s


class BulkheadFull(ResilienceError):
    def __init__(self, name: str, *, limit: int) -> None:
        super().__init__(f"Bulkhead of {name!r} is full ({limit} concurrent calls).", name=name)
        self.limit = limit


class CallTimeout(ResilienceError):
    def __init__(self, name: str, *, timeout_s: float) -> None:
        super().__init__(f"Call to {name!r} did not finish within {timeout_s} s.", name=name)
        self.timeout_s = timeout_s
