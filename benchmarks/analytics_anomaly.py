"""Bulwark's anomaly detector on NAB's labelled series and on generated series, scored the NAB way.

NAB (realKnownCause + realAWSCloudwatch, their windows), scored with benchmarks/analytics_nab.py (standard
profile A_TP=1, A_FP=0.11, A_FN=1; one threshold for the whole corpus; 0 = null, 100 = perfect), beside
NAB's published board (whole corpus, standard profile). Then generated 5-minute series with daily
seasonality and injected spikes, level shifts and slow drifts (several seeds), windows around each
injection as NAB sizes them (10 % of the file over its anomalies). Then the CPU time of the detector on a
20,000-row series (one core), and the same through `manage.py analytics_detect`'s code path.

    .venv/bin/python benchmarks/analytics_anomaly.py [--nab ../shared/datasets/nab] [--seeds 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.analytics import detection  # noqa: E402
from apps.analytics.series import median_step, read_csv  # noqa: E402
from benchmarks import analytics_nab as nab  # noqa: E402
from benchmarks.analytics_forecast import nab_dir  # noqa: E402

FOLDERS = ("realKnownCause", "realAWSCloudwatch")
PUBLISHED = [("ARTime", 74.9), ("Numenta HTM", 70.1), ("random cut forest", 51.7), ("Twitter ADVec", 47.1),
             ("windowed Gaussian", 39.6), ("null", 0.0)]
STEP_S = 300.0


def score_nab(folder: Path) -> tuple[float, float, list[tuple[str, nab.ScoredFile]]]:
    windows = json.loads((folder / "windows.json").read_text())
    files = []
    for key in sorted(windows):
        if key.split("/")[0] not in FOLDERS:
            continue
        _, epochs, values = read_csv((folder / key).read_text())
        result = detection.detect(values, step_s=median_step(epochs))
        ts = epochs.astype("datetime64[s]")
        limits = [(np.datetime64(a[:19]), np.datetime64(b[:19])) for a, b in windows[key]]
        files.append((key, nab.sweep_file(ts, result.score, limits)))
    score, threshold = nab.normalised([f for _, f in files])
    return score, threshold, files


# The knobs of the detector's suppression and its range signal, for the held-out check below.
GRID = {"hold_halflife": (50, 100), "range_rest": (50, 150, 300), "rest": (0, 50, 100), "alarm_level": (0.6, 0.7, 0.8)}
# The knobs of the daily slot gate, the range window and the flatline run (the residual is recomputed for each).
GRID_SIGNALS = {"slot_days": (3, 5, 7), "slot_tolerance": (1.0, 2.0, 3.0), "range_window": (2000, 4000, 6000),
                "stuck_min_run": (6, 24)}
RESIDUAL_KNOBS = ("slot_days", "slot_tolerance", "slot_min_days", "slot_half_s")


def holdout(folder: Path, grid: dict = GRID) -> list[tuple[str, str, dict, float, float, float]]:
    """Two-fold check that the configuration is not fitted to the files it is scored on: the files are split
    in two halves (alternate files in name order); the grid point with the best NAB score on one half is
    scored on the other half, beside the shipped default there. Rows: (picked on, scored on, picked config,
    score there, default's score there, picked config's score on its own half)."""
    windows = json.loads((folder / "windows.json").read_text())
    keys = [k for k in sorted(windows) if k.split("/")[0] in FOLDERS]
    prepared = []
    for key in keys:
        _, epochs, values = read_csv((folder / key).read_text())
        x = np.asarray(values, dtype=float)
        ts = epochs.astype("datetime64[s]")
        limits = [(np.datetime64(a[:19]), np.datetime64(b[:19])) for a, b in windows[key]]
        scored = nab.sweep_file(ts, np.zeros(len(x)), limits)
        prepared.append((key, x, median_step(epochs), scored))
    halves = {"A": keys[0::2], "B": keys[1::2]}
    residuals: dict[tuple, list[np.ndarray]] = {}

    def scores(config: detection.DetectorConfig) -> dict[str, float]:
        knobs = tuple(getattr(config, name) for name in RESIDUAL_KNOBS)
        if knobs not in residuals:
            residuals[knobs] = [detection.residual_nines(x, step, config)[0] for _, x, step, _ in prepared]
        files = {}
        for (key, x, _, scored), nines in zip(prepared, residuals[knobs], strict=True):
            final, _ = detection.combine(nines, detection.novelty(x, config), config)
            files[key] = dataclasses.replace(scored, scores=final[nab.probationary_length(len(x)):])
        return {half: nab.normalised([files[k] for k in names])[0] for half, names in halves.items()}

    default = scores(detection.DEFAULT)
    results = [(dict(zip(grid, values, strict=True)),
                scores(dataclasses.replace(detection.DEFAULT, **dict(zip(grid, values, strict=True)))))
               for values in itertools.product(*grid.values())]
    rows = []
    for picked_on, scored_on in (("A", "B"), ("B", "A")):
        config, got = max(results, key=lambda r: r[1][picked_on])
        rows.append((picked_on, scored_on, config, got[scored_on], default[scored_on], got[picked_on]))
    return rows


def generated(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(timestamps, values, windows as row ranges): daily seasonality, noise, and 3 injected anomalies."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    per_day = int(86_400 / STEP_S)
    base = rng.uniform(20, 200)
    y = base * (1 + 0.3 * np.sin(2 * np.pi * t / per_day) + rng.normal(0, 0.04, n))
    kinds = ["spike", "shift", "drift"]
    rng.shuffle(kinds)
    width = int(0.1 * n / len(kinds))
    starts = np.sort(rng.choice(np.arange(int(0.25 * n), n - width, width + per_day // 2), size=3, replace=False))
    windows = []
    for kind, at in zip(kinds, starts, strict=True):
        if kind == "spike":
            y[at:at + 3] += base * rng.uniform(0.6, 1.2)
        elif kind == "shift":
            y[at:] += base * rng.choice([-1, 1]) * rng.uniform(0.3, 0.5)
        else:
            ramp = np.clip((t - at) / (per_day / 2), 0, 1)
            y += base * 0.5 * ramp * (t < at + per_day)
        windows.append((max(0, at - width // 2), min(n - 1, at + width // 2)))
    ts = (1_700_000_000 + t * STEP_S).astype("datetime64[s]")
    return ts, y, windows


def score_generated(seeds: int) -> tuple[float, float, int, int]:
    files = []
    for seed in range(seeds):
        ts, y, windows = generated(seed)
        result = detection.detect(y, step_s=STEP_S)
        files.append(nab.sweep_file(ts, result.score, [(ts[a], ts[b]) for a, b in windows]))
    score, threshold = nab.normalised(files)
    hits = sum(len(set(f.window[(f.scores >= threshold) & (f.window >= 0)].tolist())) for f in files)
    return score, threshold, hits, sum(f.n_windows for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nab", help="folder of the NAB data (default ../shared/datasets/nab or BULWARK_NAB_DIR)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--per-file", action="store_true", help="print windows hit and false alarms per file")
    args = parser.parse_args()
    folder = nab_dir(args.nab)

    began = time.process_time()
    score, threshold, files = score_nab(folder)
    elapsed = time.process_time() - began
    rows = sum(len(f.scores) for _, f in files)
    hit = sum(len(set(f.window[(f.scores >= threshold) & (f.window >= 0)].tolist())) for _, f in files)
    false = sum(int(np.sum((f.scores >= threshold) & (f.window < 0))) for _, f in files)
    print(f"NAB standard profile, {', '.join(FOLDERS)} ({len(files)} files, {sum(f.n_windows for _, f in files)}"
          f" windows), one threshold for the corpus ({threshold:.4f}):")
    board = sorted([*PUBLISHED, ("Bulwark (this run; subset of the corpus)", round(score, 1))], key=lambda r: -r[1])
    for name, value in board:
        print(f"  {value:6.1f}  {name}")
    print(f"  Bulwark: {hit} windows detected, {false} false alarms at that threshold; "
          f"{elapsed:.1f} s CPU for the scores ({rows} scored rows)")
    if args.per_file:
        for key, f in files:
            det = f.scores >= threshold
            print(f"    {key:62s} windows {f.n_windows} hit {len(set(f.window[det & (f.window >= 0)].tolist()))}"
                  f" false {int(np.sum(det & (f.window < 0)))}")

    for grid in (GRID, GRID_SIGNALS):
        print(f"\nHeld-out check (NAB files split in two halves; grid {grid}):")
        for picked_on, scored_on, config, there, default_there, own in holdout(folder, grid):
            print(f"  picked on half {picked_on} ({own:.1f} there): {config} -> half {scored_on}: {there:.1f} "
                  f"(shipped default on half {scored_on}: {default_there:.1f})")

    g_score, g_threshold, g_hits, g_windows = score_generated(args.seeds)
    print(f"\nGenerated series (spike, level shift, slow drift; {args.seeds} seeds): NAB-style score "
          f"{g_score:.1f} at threshold {g_threshold:.4f}; {g_hits}/{g_windows} injected anomalies detected")

    y = np.concatenate([generated(s)[1] for s in range(4)])[:20_000]
    began = time.process_time()
    detection.detect(y, step_s=STEP_S)
    print(f"\ndetector on a 20,000-row series: {time.process_time() - began:.2f} s CPU (aim: under 10 s on one core)")
    time_commands(y)


def _command(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one `manage.py` run, Django start-up included, pinned to one core where possible."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([*pin, sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_commands(y: np.ndarray) -> None:
    """Both commands on a 20,000-row CSV (5-minute rows for detection, hourly rows for a 168 h forecast)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, step in (("five_min.csv", 300), ("hourly.csv", 3600)):
            stamps = (1_700_000_000 + np.arange(len(y)) * step).astype("datetime64[s]").astype(str)
            rows = "\n".join(f"{t.replace('T', ' ')},{v:.4f}" for t, v in zip(stamps, y, strict=True))
            (folder / name).write_text("timestamp,value\n" + rows + "\n")
        runs = {
            "analytics_detect": ["analytics_detect", str(folder / "five_min.csv"), str(folder / "d.csv")],
            "analytics_forecast --horizon 168": ["analytics_forecast", str(folder / "hourly.csv"),
                                                 str(folder / "f.csv"), "--horizon", "168", "--step", "1h"],
        }
        print("commands on a 20,000-row CSV, one core (Django start-up included; aim: under 10 s):")
        for label, args in runs.items():
            wall, cpu = _command(args)
            print(f"  manage.py {label:34s} {wall:6.2f} s wall, {cpu:6.2f} s CPU")


if __name__ == "__main__":
    main()
