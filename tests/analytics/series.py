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


def register_endpoint_readers(route_kinds=("endpoint_p95_ms", "endpoint_rps", "endpoint_error_rate"), *,
                              days: int = 7, seed: int = 3, spike_at: int = 30) -> None:
    """Register readers that serve an endpoint's signals as 5-minute noise ending at `end`, with the p95
    jumping to 900 ms for 4 rows `spike_at` rows before the end (the analytics conftest restores the registry)."""
    from datetime import timedelta

    from apps.analytics import sources

    rng = np.random.default_rng(seed)
    n = days * 288
    data = {"endpoint_p95_ms": rng.normal(120, 6, n), "endpoint_rps": rng.normal(40, 2, n),
            "endpoint_error_rate": rng.normal(0.01, 0.002, n)}
    data["endpoint_p95_ms"][-spike_at:-spike_at + 4] = 900.0

    def reader_for(kind):
        def reader(*, tenant, series, start, end, step_s):
            return [(end - timedelta(seconds=300 * (n - i)), float(v)) for i, v in enumerate(data[kind])]
        return reader

    for kind in route_kinds:
        sources.register_series_source(kind, reader_for(kind))
