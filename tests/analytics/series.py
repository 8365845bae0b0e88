"""Generated series for the analytics tests (small, seeded)."""
from __future__ import annotations

import numpy as np

HOUR = 3600.0
MONDAY = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday


def seasonal_hourly(weeks: float, *, seed: int = 0, noise: float = 0.08) -> np.ndarray:
    """Daily and weekly shape, noise; hourly."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(weeks * 168))
    daily = np.sin(2 * np.pi * (t % 24) / 24)
    weekend = np.where(((t // 24) % 7) >= 5, -0.4, 0.0)
    return 100 * (1 + 0.3 * daily + weekend + rng.normal(0, noise, len(t)))


def seasonal_5min(days: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 288)
    return 50 * (1 + 0.3 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.03, len(t)))
