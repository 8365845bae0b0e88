"""Retries: exponential backoff with full jitter, and a budget so retries cannot multiply an outage."""
from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from apps.resilience.errors import BreakerOpen, BulkheadFull

BUDGET_WINDOW_S = 10


@dataclass(frozen=True)
class RetryConfig:
    max_attempts: int = 3
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 2.0
    attempt_timeout_s: float | None = None
    retry_exceptions: tuple[type[BaseException], ...] = (Exception,)
    retry_statuses: frozenset[int] = frozenset()
    budget_pct: int = 20
    budget_min_retries_per_s: int = 1

    @classmethod
    def from_policy(cls, policy: Any) -> RetryConfig:
        return cls(
            max_attempts=policy.max_attempts,
            backoff_base_s=policy.backoff_base_ms / 1000.0,
            backoff_cap_s=policy.backoff_cap_ms / 1000.0,
            attempt_timeout_s=policy.attempt_timeout_ms / 1000.0 if policy.attempt_timeout_ms else None,
            retry_exceptions=tuple(import_string(p) for p in policy.retry_exceptions) or (Exception,),
            retry_statuses=frozenset(policy.retry_statuses),
            budget_pct=policy.budget_pct,
            budget_min_retries_per_s=policy.budget_min_retries_per_s,
        )

    def retryable(self, exc: BaseException) -> bool:
        # A breaker's or bulkhead's refusal is never retried: retrying into an open breaker is what it prevents.
        return not isinstance(exc, BreakerOpen | BulkheadFull) and isinstance(exc, self.retry_exceptions)

    def backoff_s(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**(attempt-1))]."""
        return rand() * min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))


class RetryBudget:
    """Calls and retries of the last 10 s in one-second buckets (per process, as in Envoy and gRPC throttling)."""

    def __init__(self) -> None:
        self._buckets: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def _totals(self, now: float) -> tuple[int, int]:
        oldest = int(now) - BUDGET_WINDOW_S + 1
        for second in [s for s in self._buckets if s < oldest]:
            del self._buckets[second]
        calls = sum(b[0] for b in self._buckets.values())
        return calls, sum(b[1] for b in self._buckets.values())

    def record_call(self, now: float) -> None:
        with self._lock:
            self._buckets.setdefault(int(now), [0, 0])[0] += 1

    def try_spend(self, config: RetryConfig, now: float) -> bool:
        """Take one retry if the budget allows it; budget_pct 0 means no budget (always allowed)."""
        with self._lock:
            if config.budget_pct == 0:
                allowed = True
            else:
                calls, retries = self._totals(now)
                limit = max(config.budget_min_retries_per_s * BUDGET_WINDOW_S, calls * config.budget_pct / 100.0)
                allowed = retries + 1 <= limit
            if allowed:
                self._buckets.setdefault(int(now), [0, 0])[1] += 1
            return allowed
