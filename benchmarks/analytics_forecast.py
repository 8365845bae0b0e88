"""Forecast accuracy of Bulwark's forecaster beside seasonal-naive and a `predict_linear`-style line.

Series: NAB's real series resampled hourly (NYC taxi demand, machine and ambient temperature, CPU of an
autoscaling group, and the AWS CloudWatch metrics long enough for the horizon) and generated hourly series
with daily and weekly seasonality, trend, noise and shocks (several seeds). For each series and horizon
(24 h, 168 h), rolling origins over the last part of the series; per method the MASE (scaled by the
in-sample seasonal-naive error), Bulwark's ratio to seasonal-naive, its 80 % interval coverage, and the
time to forecast a 20,000-row series (one core).

    .venv/bin/python benchmarks/analytics_forecast.py [--nab ../shared/datasets/nab] [--seeds 5]

The NAB folder defaults to `../shared/datasets/nab` from the repository root (env BULWARK_NAB_DIR); the data
is read in place, never copied into the repository.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.analytics import forecasting  # noqa: E402
from apps.analytics.series import read_csv, regularise  # noqa: E402

NAB_SERIES = [
    "realKnownCause/nyc_taxi.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
    "realAWSCloudwatch/ec2_network_in_5abac7.csv",
    "realAWSCloudwatch/elb_request_count_8c0756.csv",
    "realAWSCloudwatch/grok_asg_anomaly.csv",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
]
HORIZONS = (24, 168)
ORIGINS = 3
HOUR = 3600.0


def nab_dir(arg: str | None = None) -> Path:
    """--nab, else BULWARK_NAB_DIR, else ../shared/datasets/nab from the repository root (for a git worktree
    one level deeper, ../../shared/datasets/nab)."""
    chosen = arg or os.environ.get("BULWARK_NAB_DIR")
    if chosen:
        return Path(chosen)
    for parent in (ROOT.parent, ROOT.parent.parent):
        candidate = parent / "shared" / "datasets" / "nab"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "datasets" / "nab"


def generated(seed: int, weeks: int = 16) -> np.ndarray:
    """Hourly series: level + trend + daily and weekly shapes + noise + a few shocks (spikes, a level shift)."""
    rng = np.random.default_rng(seed)
    n = weeks * 168
    t = np.arange(n)
    hour = t % 24
    dow = (t // 24) % 7
    level = rng.uniform(50, 500)
    daily = np.sin(2 * np.pi * (hour - rng.uniform(0, 24)) / 24) + 0.5 * np.sin(4 * np.pi * hour / 24)
    weekly = np.where(dow >= 5, -rng.uniform(0.2, 0.6), 0.0)
    trend = rng.uniform(-0.3, 0.6) * t / n
    noise = rng.normal(0, rng.uniform(0.05, 0.2), n)
    y = level * (1 + trend + 0.3 * daily + weekly + noise)
    for _ in range(rng.integers(2, 6)):
        at = rng.integers(0, n)
        y[at:at + rng.integers(1, 4)] *= rng.uniform(1.5, 3.0)
    shift_at = rng.integers(n // 3, n)
    y[shift_at:] *= rng.uniform(0.85, 1.2)
    return y


def evaluate(y: np.ndarray, start_s: float, horizon: int) -> dict | None:
    """Rolling-origin errors of the three methods over the last ORIGINS * horizon steps (at most)."""
    week = 168
    errs = {"bulwark": [], "seasonal_naive": [], "linear": []}
    inside = 0
    count = 0
    models = []
    n = len(y)
    for k in range(ORIGINS, 0, -1):
        cut = n - k * horizon
        if cut < 4 * week:
            continue
        past, future = y[:cut], y[cut:cut + horizon]
        f = forecasting.forecast(past, start_s=start_s, step_s=HOUR, horizon=horizon)
        season = forecasting._season(len(past), HOUR)
        scale = forecasting.mase_scale(past[-int(forecasting.DEFAULT.max_train_weeks * week):], season)
        errs["bulwark"].append(np.mean(np.abs(future - f.point)) / scale)
        errs["seasonal_naive"].append(np.mean(np.abs(future - forecasting.seasonal_naive(past, horizon, season))) / scale)
        errs["linear"].append(np.mean(np.abs(future - forecasting.linear_trend(past, horizon, window=week))) / scale)
        inside += int(np.sum((future >= f.lower) & (future <= f.upper)))
        count += len(future)
        models.append(f.model)
    if not count:
        return None
    out = {name: float(np.mean(v)) for name, v in errs.items()}
    out["coverage"] = inside / count
    out["gbm_share"] = models.count(forecasting.GRADIENT_BOOSTING) / len(models)
    return out


def report(title: str, rows: list[tuple[str, int, dict]]) -> None:
    print(f"\n{title}")
    print(f"{'series':44s} {'h':>4s} {'bulwark':>8s} {'s-naive':>8s} {'linear':>8s} {'ratio':>6s} {'cover':>6s} {'gbm':>4s}")
    for name, h, r in rows:
        print(f"{name[-44:]:44s} {h:4d} {r['bulwark']:8.3f} {r['seasonal_naive']:8.3f} {r['linear']:8.3f} "
              f"{r['bulwark'] / r['seasonal_naive']:6.2f} {r['coverage']:6.1%} {r['gbm_share']:4.0%}")
    for h in HORIZONS:
        sel = [r for _, hh, r in rows if hh == h]
        if not sel:
            continue
        ratios = [r["bulwark"] / r["seasonal_naive"] for r in sel]
        print(f"  h={h:3d}: mean MASE bulwark {np.mean([r['bulwark'] for r in sel]):.3f}, seasonal-naive "
              f"{np.mean([r['seasonal_naive'] for r in sel]):.3f}, linear {np.mean([r['linear'] for r in sel]):.3f}; "
              f"ratio to seasonal-naive: mean {np.mean(ratios):.2f} (geometric {np.exp(np.mean(np.log(ratios))):.2f}),"
              f" range {min(ratios):.2f}-{max(ratios):.2f}; 80% coverage {np.mean([r['coverage'] for r in sel]):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nab", help="folder of the NAB data (default ../shared/datasets/nab or BULWARK_NAB_DIR)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    folder = nab_dir(args.nab)

    rows, skipped = [], []
    for name in NAB_SERIES:
        path = folder / name
        if not path.exists():
            skipped.append(f"{name} (missing)")
            continue
        _, ts, values = read_csv(path.read_text())
        s = regularise(ts, values, HOUR)
        for h in HORIZONS:
            r = evaluate(s.values, s.start_s, h)
            if r is None:
                skipped.append(f"{name} h={h} ({len(s.values)} h of history: under 4 weeks + horizon)")
            else:
                rows.append((name, h, r))
    report(f"NAB series resampled hourly ({folder})", rows)
    if skipped:
        print("  not evaluated: " + "; ".join(skipped))

    gen_rows = []
    for seed in range(args.seeds):
        y = generated(seed)
        for h in HORIZONS:
            gen_rows.append((f"generated seed {seed}", h, evaluate(y, 1_700_000_000.0 - 1_700_000_000 % 604800, h)))
    report(f"Generated hourly series ({args.seeds} seeds, 16 weeks each)", gen_rows)
    report("All series", rows + gen_rows)

    y = generated(99, weeks=120)[:20_000]
    began = time.process_time()
    forecasting.forecast(y, start_s=0.0, step_s=HOUR, horizon=168)
    print(f"\nforecast of a 20,000-row series, horizon 168: {time.process_time() - began:.2f} s CPU "
          "(includes the backtest; the aim is under 10 s on one core)")


if __name__ == "__main__":
    main()
