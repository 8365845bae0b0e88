"""The NAB scorer of the anomaly benchmark, pinned on tiny hand-computed cases (NAB's sweeper and runner).

A 100-row file has 15 probationary rows (15 %); its one window covers rows 50..59 (width 10).
sigma(p) = 2 / (1 + exp(5 p)) - 1; a true positive earns A_TP * sigma(position) / sigma(-1).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import analytics_nab as nab

N = 100
PROBATION = 15
WINDOW = (50, 59)
SIGMA_1 = 2.0 / (1.0 + math.exp(-5.0)) - 1.0   # sigma(-1) = 0.98661...


def stamps(n: int = N) -> np.ndarray:
    return (np.datetime64("2024-01-01T00:00:00") + np.arange(n) * np.timedelta64(5, "m")).astype("datetime64[s]")


def one_file(detections: list[int], n: int = N, windows: list[tuple[int, int]] = (WINDOW,)) -> nab.ScoredFile:
    ts = stamps(n)
    scores = np.zeros(n)
    scores[list(detections)] = 1.0
    return nab.sweep_file(ts, scores, [(ts[a], ts[b]) for a, b in windows])


def sweep_at(f: nab.ScoredFile, row: int) -> float:
    return float(f.sweep[row - PROBATION])


def test_the_scaled_sigmoid_is_nabs():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.9866142981514305)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.8482836399575129)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.9866142981514305)
    # NAB's sweeper: "FP well behind window" from 3 on, 3 itself included (not 2 * sigmoid(-15) - 1)
    assert nab.scaled_sigmoid(3.0) == -1.0
    assert nab.scaled_sigmoid(2.999) > -1.0


def test_a_detection_at_the_window_start_earns_the_full_true_positive_weight():
    f = one_file([50])
    assert sweep_at(f, 50) == pytest.approx(1.0)
    assert nab.best_threshold([f]) == (1.0, pytest.approx(1.0))
    score, threshold = nab.normalised([f])
    assert score == pytest.approx(100.0)
    assert threshold == 1.0


def test_a_detection_at_the_window_end_earns_the_sigmoid_of_its_position():
    f = one_file([59])
    # position -(59 - 59 + 1) / 10 = -0.1
    expected = (2.0 / (1.0 + math.exp(-0.5)) - 1.0) / SIGMA_1      # 0.24824...
    assert sweep_at(f, 59) == pytest.approx(expected)
    assert expected == pytest.approx(0.248242, abs=1e-6)
    score, _ = nab.normalised([f])
    # (raw - null) / (perfect - null) = (0.248 + 1) / (1 + 1)
    assert score == pytest.approx(100.0 * (expected + 1.0) / 2.0)


def test_rewards_fall_through_the_window():
    f = one_file([])
    inside = [sweep_at(f, i) for i in range(WINDOW[0], WINDOW[1] + 1)]
    assert inside[0] == pytest.approx(1.0)
    assert all(a > b > 0 for a, b in zip(inside[:-1], inside[1:], strict=True))
    # halfway: position -(59 - 55 + 1) / 10 = -0.5
    assert sweep_at(f, 55) == pytest.approx(nab.scaled_sigmoid(-0.5) / SIGMA_1)


def test_a_detection_before_the_window_costs_the_full_false_positive_weight_and_is_not_chosen():
    f = one_file([30])
    assert sweep_at(f, 30) == pytest.approx(-0.11)
    # firing costs 0.11 and misses the window: the optimised threshold keeps the detector silent
    threshold, raw = nab.best_threshold([f])
    assert threshold == math.inf and raw == pytest.approx(-1.0)
    assert nab.normalised([f])[0] == pytest.approx(0.0)


def test_false_positives_after_a_window_are_softened_by_their_distance_until_three_widths_past():
    f = one_file([])
    # position past the window is (i - 59) / (10 - 1)
    assert sweep_at(f, 60) == pytest.approx(0.11 * nab.scaled_sigmoid(1 / 9))
    assert -0.11 < sweep_at(f, 60) < 0
    assert sweep_at(f, 68) == pytest.approx(0.11 * nab.scaled_sigmoid(1.0))
    assert sweep_at(f, 85) == pytest.approx(0.11 * nab.scaled_sigmoid(26 / 9))
    assert sweep_at(f, 85) > -0.11
    assert sweep_at(f, 86) == -0.11      # exactly 3 widths past: the full weight
    assert sweep_at(f, 99) == -0.11


def test_a_detection_outside_every_window_with_a_hit_scores_tp_minus_fp():
    f = one_file([50, 30])
    threshold, raw = nab.best_threshold([f])
    assert raw == pytest.approx(1.0 - 0.11)
    assert nab.normalised([f])[0] == pytest.approx(100.0 * (0.89 + 1.0) / 2.0)


def test_only_the_best_detection_of_a_window_counts():
    f = one_file([52, 55, 58])
    threshold, raw = nab.best_threshold([f])
    assert raw == pytest.approx(nab.scaled_sigmoid(-0.8) / SIGMA_1)


def test_probationary_rows_are_not_scored():
    f = one_file([10])
    assert len(f.scores) == N - PROBATION
    assert nab.best_threshold([f]) == (math.inf, pytest.approx(-1.0))
    assert nab.probationary_length(10_000) == 750


def test_the_null_detector_scores_zero_and_the_perfect_one_a_hundred():
    windows = [(30, 39), (70, 79)]
    null = one_file([], windows=windows)
    constant = dataclass_with_scores(null, np.full(len(null.scores), 0.5))
    perfect = one_file([30, 70], windows=windows)
    assert nab.normalised([null])[0] == pytest.approx(0.0)
    assert nab.normalised([constant])[0] == pytest.approx(0.0)   # a constant score: all or nothing, nothing wins
    assert nab.normalised([perfect])[0] == pytest.approx(100.0)
    assert nab.perfect_raw([perfect]) == pytest.approx(2.0)
    # and over a corpus of files, with one threshold for all of them
    other = one_file([50])
    assert nab.normalised([perfect, other])[0] == pytest.approx(100.0)
    assert nab.normalised([null, one_file([])])[0] == pytest.approx(0.0)


def test_one_threshold_is_optimised_over_the_whole_corpus():
    ts = stamps()
    limits = [(ts[50], ts[59])]
    # file a: its window start scores 0.9; file b: a false alarm scores 0.95 and its window start 0.8
    a = np.zeros(N)
    a[50] = 0.9
    b = np.zeros(N)
    b[30] = 0.95
    b[50] = 0.8
    files = [nab.sweep_file(ts, a, limits), nab.sweep_file(ts, b, limits)]
    threshold, raw = nab.best_threshold(files)
    # 0.8 catches both windows at the cost of one false alarm: 2 - 0.11 beats 0.9's 1 - 1 and null's -2
    assert threshold == 0.8
    assert raw == pytest.approx(2.0 - 0.11)
    assert nab.normalised(files)[0] == pytest.approx(100.0 * (1.89 + 2.0) / 4.0)


def dataclass_with_scores(f: nab.ScoredFile, scores: np.ndarray) -> nab.ScoredFile:
    return nab.ScoredFile(scores=scores, sweep=f.sweep, window=f.window, n_windows=f.n_windows)
