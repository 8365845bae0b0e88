"""Retry delays: exponential backoff with full jitter, on an injected random source."""
from __future__ import annotations

import random
from typing import Protocol


class RandomSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


def retry_delay_s(*, attempt: int, base_s: float, max_s: float, rng: RandomSource | None = None) -> float:
    """Delay before the attempt after `attempt` (1-based): uniform(0, min(max_s, base_s * 2**(attempt-1))).

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads a burst of failures so
    the retries of many runs do not hit a recovering dependency at the same instant.
    """
    ceiling_s = min(max_s, base_s * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling_s)
