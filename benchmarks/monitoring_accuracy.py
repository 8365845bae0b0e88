"""Accuracy of merged percentiles: 1,000,000 heavy-tailed latencies recorded by 4 processes into Bulwark's
log-bucket histograms, merged by adding buckets, against the exact percentiles of all the values.
Also times the bucket index against `ddsketch.DDSketch.add` (the library the hand-written index replaces).

Run:  .venv/bin/python benchmarks/monitoring_accuracy.py
"""
from __future__ import annotations

import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.core import histogram  # noqa: E402

TOTAL, PROCESSES = 1_000_000, 4
QUANTILES = (0.50, 0.95, 0.99, 0.999)


def latencies(seed: int, n: int) -> np.ndarray:
    """Log-normal body (median ~20 ms) with a Pareto tail (5 % of requests, alpha 1.5, from 200 ms)."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=math.log(20), sigma=0.6, size=n)
    tail = 200 * (1 + rng.pareto(1.5, size=n))
    return np.where(rng.random(n) < 0.05, tail, body)


def record(seed: int) -> dict[int, int]:
    h: dict[int, int] = {}
    for value in latencies(seed, TOTAL // PROCESSES).tolist():
        histogram.add(h, value)
    return h


def main() -> None:
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        parts = pool.map(record, range(PROCESSES))
    merged = histogram.merge(parts)
    values = np.sort(np.concatenate([latencies(seed, TOTAL // PROCESSES) for seed in range(PROCESSES)]))
    print(f"{TOTAL:,} latencies (log-normal body, Pareto tail) recorded by {PROCESSES} processes, merged "
          f"({len(merged)} buckets, gamma {histogram.GAMMA:.6f})")
    print(f"  {'quantile':>9} {'exact ms':>12} {'merged ms':>12} {'rel. error':>11}")
    worst = 0.0
    for q in QUANTILES:
        exact = float(values[math.floor(q * (len(values) - 1))])
        answer = histogram.quantile_ms(merged, q)
        error = abs(answer - exact) / exact
        worst = max(worst, error)
        print(f"  {'p' + format(q * 100, 'g'):>9} {exact:12.3f} {answer:12.3f} {error:11.4%}")
    print(f"  worst relative error {worst:.4%} (bound {histogram.RELATIVE_ERROR:.0%})")

    from ddsketch import DDSketch

    sample = latencies(99, 200_000).tolist()
    h: dict[int, int] = {}
    start = time.perf_counter()
    for value in sample:
        histogram.add(h, value)
    ours = (time.perf_counter() - start) / len(sample) * 1e9
    sketch = DDSketch(relative_accuracy=histogram.RELATIVE_ERROR)
    start = time.perf_counter()
    for value in sample:
        sketch.add(value)
    theirs = (time.perf_counter() - start) / len(sample) * 1e9
    print(f"cost per recorded value: hand-written index {ours:.0f} ns, ddsketch.DDSketch.add {theirs:.0f} ns "
          f"({theirs / ours:.1f}x)")


if __name__ == "__main__":
    main()
