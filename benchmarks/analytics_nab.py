"""NAB scoring (Lavin & Ahmad 2015; numenta/NAB `nab/sweeper.py` and `nab/runner.py`), for the anomaly
benchmark and its tests.

Each row scores as if it were a detection. Inside a window of width W whose last row is R, row i sits at
position -(R - i + 1) / W (-1 at the window's first row) and earns A_TP * sigma(position) / sigma(-1), where
sigma(p) = 2 / (1 + exp(5 p)) - 1: the first row earns exactly A_TP, later rows less (A_TP * 0.0134 / 0.9866
at the last row). Outside windows a detection costs A_FP * sigma(position past the previous window), where
that position is (i - R) / (W - 1) for the last window before it, so a detection just after a window is
softened (near 0) and one 3 or more window-widths past it costs the full A_FP (sigma is -1 from 3 on,
inclusive, as in NAB's sweeper); before the first window of a file it costs the full A_FP. A window with no
detection costs A_FN; only the best detection of a window counts. The first 15 % of each file (at most 750
rows) is probationary and not scored. One threshold is chosen per detector over the whole corpus (a
detection is score >= threshold), and the raw score is normalised to 0 (null detector: never fires) .. 100
(perfect detector: A_TP per window, firing at each window's first row).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STANDARD_PROFILE = {"tp": 1.0, "fp": 0.11, "fn": 1.0}
PROBATIONARY_PERCENT = 0.15


def scaled_sigmoid(position: float) -> float:
    """NAB's sigma: about 0.9866 at -1 (a window's first row), 0 at 0, -1 from 3 on (3 included)."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probationary_length(n_rows: int) -> int:
    return int(min(math.floor(PROBATIONARY_PERCENT * n_rows), PROBATIONARY_PERCENT * 5000))


@dataclass
class ScoredFile:
    """One file's rows ready for the threshold sweep: detector score, sweep score, window id (-1 outside)."""

    scores: np.ndarray
    sweep: np.ndarray
    window: np.ndarray
    n_windows: int


def sweep_file(timestamps: np.ndarray, scores: np.ndarray, windows: list[tuple[np.datetime64, np.datetime64]],
               profile: dict = STANDARD_PROFILE) -> ScoredFile:
    """The per-row sweep scores of one file (timestamps: sorted datetime64 array)."""
    n = len(timestamps)
    sweep = np.zeros(n)
    window = np.full(n, -1, dtype=np.int64)
    limits = sorted(windows)
    bounds = []
    for start, end in limits:
        left = int(np.searchsorted(timestamps, start, side="left"))
        right = int(np.searchsorted(timestamps, end, side="right")) - 1
        if right >= left:
            bounds.append((left, right))
    prev_right = prev_width = None
    w = 0
    i = 0
    while i < n:
        if w < len(bounds) and i == bounds[w][0]:
            left, right = bounds[w]
            width = float(right - left + 1)
            for j in range(left, right + 1):
                sweep[j] = scaled_sigmoid(-(right - j + 1) / width) * profile["tp"] / MAX_TP
                window[j] = w
            prev_right, prev_width = right, width
            w += 1
            i = right + 1
            continue
        if prev_right is None:
            unweighted = -1.0
        else:
            # NAB divides by (W - 1), which fails for a one-row window; such a window counts as width 2 here
            unweighted = scaled_sigmoid(abs(prev_right - i) / max(prev_width - 1.0, 1.0))
        sweep[i] = unweighted * profile["fp"]
        i += 1
    keep = np.arange(n) >= probationary_length(n)
    scored_windows = np.unique(window[keep & (window >= 0)])
    return ScoredFile(scores=np.asarray(scores, dtype=float)[keep], sweep=sweep[keep], window=window[keep],
                      n_windows=len(scored_windows))


def best_threshold(files: list[ScoredFile], profile: dict = STANDARD_PROFILE) -> tuple[float, float]:
    """(threshold, raw score) of the best single threshold over all files: a detection is score >= threshold."""
    scores, sweep, window = [], [], []
    offset = 0
    for f in files:
        scores.append(f.scores)
        sweep.append(f.sweep)
        window.append(np.where(f.window >= 0, f.window + offset, -1))
        offset += int(f.window.max(initial=-1)) + 1
    s = np.concatenate(scores)
    sw = np.concatenate(sweep)
    win = np.concatenate(window)
    n_windows = sum(f.n_windows for f in files)
    order = np.argsort(-s, kind="mergesort")
    best_tp = {}
    score = -profile["fn"] * n_windows
    best = (math.inf, score)  # threshold above every score: the null detector
    k = 0
    while k < len(order):
        threshold = s[order[k]]
        while k < len(order) and s[order[k]] == threshold:
            idx = order[k]
            wid = int(win[idx])
            if wid < 0:
                score += sw[idx]
            else:
                prev = best_tp.get(wid)
                if prev is None:
                    best_tp[wid] = sw[idx]
                    score += sw[idx] + profile["fn"]
                elif sw[idx] > prev:
                    best_tp[wid] = sw[idx]
                    score += sw[idx] - prev
            k += 1
        if score > best[1]:
            best = (float(threshold), score)
    return best


def perfect_raw(files: list[ScoredFile], profile: dict = STANDARD_PROFILE) -> float:
    """The perfect detector's raw score: A_TP for every (scored) window, as NAB's runner normalises."""
    return profile["tp"] * sum(f.n_windows for f in files)


def normalised(files: list[ScoredFile], profile: dict = STANDARD_PROFILE) -> tuple[float, float]:
    """(NAB score 0..100, chosen threshold)."""
    threshold, raw = best_threshold(files, profile)
    null = -profile["fn"] * sum(f.n_windows for f in files)
    perfect = perfect_raw(files, profile)
    return 100.0 * (raw - null) / (perfect - null), threshold
