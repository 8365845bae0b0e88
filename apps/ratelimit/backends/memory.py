"""In-process backend (the embedded default): exact within one process, thread-safe under one lock."""
from __future__ import annotations

import threading
from collections.abc import Sequence

from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.ratelimit.algorithms import Outcome, State, evaluate, state_ttl_us
from apps.ratelimit.backends.base import Hit, RateLimitBackend

SWEEP_EVERY_US = 60_000_000


class MemoryBackend(RateLimitBackend):
    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock or SYSTEM_CLOCK)
        self._time_us = self.clock.time_us
        self._states: dict[str, tuple[State, int]] = {}  # key -> (state, expires_at_us)
        self._lock = threading.Lock()
        self._next_sweep_us = 0

    def decide(self, hits: Sequence[Hit], *, dry_run: bool = False) -> list[Outcome]:
        now_us = self._time_us()
        with self._lock:
            self._sweep(now_us)
            results = []
            for hit in hits:
                stored = self._states.get(hit.key)
                state = stored[0] if stored is not None and stored[1] > now_us else None
                results.append(evaluate(hit.limit, state, now_us, hit.cost))
            admitted = all(outcome.allowed for (outcome, _), hit in zip(results, hits, strict=True) if hit.enforce)
            if admitted and not dry_run:
                for (outcome, new_state), hit in zip(results, hits, strict=True):
                    if outcome.allowed and hit.cost > 0:
                        self._states[hit.key] = (new_state, now_us + state_ttl_us(hit.limit, new_state, now_us))
        return [outcome for outcome, _ in results]

    def reset(self, key: str) -> bool:
        with self._lock:
            return self._states.pop(key, None) is not None

    def _sweep(self, now_us: int) -> None:
        # Idle keys vanish like Redis TTLs, so memory follows the active keys, not every key ever seen.
        if now_us < self._next_sweep_us:
            return
        self._next_sweep_us = now_us + SWEEP_EVERY_US
        for key in [k for k, (_, expires_at) in self._states.items() if expires_at <= now_us]:
            del self._states[key]
