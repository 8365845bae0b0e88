"""Online anomaly scores for one regular series, and a multivariate detector per endpoint (pure numpy/sklearn).

A score at row t uses rows 0..t only, so appending rows never changes an earlier score. Two signals per row,
each with its own repeat suppression, then one shared suppression:
1. residual: the expected value is the median of a trailing window, blended with the median of the same time
   of day on previous days when the series has days of history (seasonal-aware, so a daily peak is not an
   anomaly); the residual's robust z-score (MAD scale of recent residuals, floored so that a flat series
   does not turn every wiggle into infinity), and that of the mean of the last few residuals (level shifts,
   drifts), is judged against the series' own recent surprises (a series that is always noisy does not
   alarm all the time), giving a raw score in [0, 1]. It is gated by the daily slot band: a value within
   `slot_tolerance` scales of what the series did within an hour of the same time of day on most of the last
   `slot_days` days (the median over those days of its distance to each day's min..max there) is a habit,
   say a nightly job's spike, and not news, so it does not alarm however far it is from the recent level;
2. range: a value outside the min..max of the last `range_window` rows is novel, scored by how far outside
   (relative to that range). Most incidents in real metric series (NAB's labelled ones included) first show
   as a value the series has not reached for days; this signal catches them early and almost never fires on
   noise, which is what the residual signal is weakest at. A flatline counts as novel too: a value repeated
   for longer than any run of repeats in the same window (and at least `stuck_min_run` rows), as when a
   collector sticks or a disk stops writing; it alarms once, on the row the run becomes the longest.
Repeat suppression: the residual signal reports only by how much it rises above the decaying peak of its
recent values; the range signal stays quiet for its rest period once it reached the alarm level (restarted
while it stays there); and after any alarm the final score is quiet for `rest` rows (as NAB's best
detectors do). So one event gives one alarm, and a threshold on the final score fires once per event.
Scores are scaled so that 0.5 is the alarm level (the default `ANOMALY_THRESHOLD`).

The configuration is one for every series, never tuned per series; benchmarks/analytics_anomaly.py prints
how it was chosen (its rest periods and levels, picked on one half of NAB's files and scored on the other).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.special import ndtr

DAY_S = 86_400


@dataclass(frozen=True)
class DetectorConfig:
    """One configuration for every series (never tuned per series)."""

    window: int = 144             # trailing rows for the expected value and its scale
    min_history: int = 24         # rows before any score is given
    short: int = 2                # rows averaged for the level-shift surprise
    seasonal_days: int = 7        # previous days looked at for the same time of day
    min_seasonal_days: int = 2
    likelihood_window: int = 2000  # rows of recent surprises the current one is judged against
    likelihood_short: int = 1
    likelihood_floor: float = 0.05  # least spread of recent surprises (log scale) the likelihood assumes
    hold_halflife: int = 50       # rows: how fast the residual signal's suppression peak decays
    max_nines: float = 30.0
    stride: int = 8                # rows between recomputations of the trailing medians
    range_window: int = 6000       # rows whose min..max a value must leave to be novel (about 3 weeks at 5 min)
    range_min_history: int = 600   # rows before the range signal says anything (early on, records are common)
    range_margin: float = 0.5      # typical step-to-step changes past the range that still count as noise
    range_scale: float = 0.05      # excess (as a share of the range) at which the range signal is ~3/4 up
    alarm_level: float = 0.7       # raw level at which a signal alarms (shown as 0.5 in the final score)
    range_rest: int = 150          # rows the range signal stays quiet after reaching the alarm level
    rest: int = 50                 # rows the final score stays quiet after any alarm
    stuck_min_run: int = 12        # repeats of one value before a flatline can alarm (an hour at 5 min)
    slot_days: int = 5             # previous days whose same time of day (+- slot_half_s) gates the residual
    slot_min_days: int = 3         # days of history before the gate applies
    slot_half_s: float = 3600.0    # half-width of the time-of-day slot
    slot_tolerance: float = 2.0    # residual scales past the slot's usual min..max that still count as habit


DEFAULT = DetectorConfig()


@dataclass
class Detection:
    score: np.ndarray      # final score in [0, 1] with repeat suppression (what alarms and `anomaly_score` use)
    raw: np.ndarray        # before suppression
    expected: np.ndarray   # expected value per row (nan before min_history)
    lower: np.ndarray      # expected range per row
    upper: np.ndarray


def _trailing(values: np.ndarray, window: int, func, stride: int = 1) -> np.ndarray:
    """func over the `window` rows before row t (fewer at the start; nan at t = 0).

    With stride > 1 the statistic is computed every `stride` rows and held in between (each row uses a
    value computed from earlier rows only, so the result stays causal).
    """
    n = len(values)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    ends = np.arange(1, n, stride)            # statistic over values[max(0, e-window):e], used from row e on
    early = ends[ends < window]
    for e in early:
        out[e] = func(values[:e])
    late = ends[ends >= window]
    if len(late):
        view = sliding_window_view(values[:-1], window)   # row i covers values[i:i+window]
        out[late] = func(view[late - window], axis=-1)
    if stride > 1:
        filled = np.where(np.isnan(out), -1, np.arange(n))
        np.maximum.accumulate(filled, out=filled)
        out = np.where(filled >= 0, out[np.maximum(filled, 0)], np.nan)
    return out


def _trailing_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of values[max(0, t-window):t] per row t (nan at t = 0), by cumulative sums."""
    n = len(values)
    c1 = np.concatenate([[0.0], np.cumsum(values)])
    c2 = np.concatenate([[0.0], np.cumsum(values * values)])
    t = np.arange(n)
    lo = np.maximum(0, t - window)
    count = (t - lo).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[t] - c1[lo]) / count
        var = np.fmax((c2[t] - c2[lo]) / count - mean * mean, 0.0)
    return mean, np.sqrt(var)


def _median(a, axis=None):
    return np.median(a, axis=axis)


def _mad(a, axis=None):
    med = np.median(a, axis=axis, keepdims=True) if axis is not None else np.median(a)
    return np.median(np.abs(a - med), axis=axis)


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[0], np.nan)
    ok = ~np.all(np.isnan(a), axis=1)
    if ok.any():
        out[ok] = np.nanmedian(a[ok], axis=1)
    return out


def seasonal_expected(values: np.ndarray, step_s: float, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """Median of the same time of day over previous days (causal); nan where too few days exist."""
    n = len(values)
    period = int(round(DAY_S / step_s)) if step_s > 0 else 0
    out = np.full(n, np.nan)
    if period < 2 or n <= period * config.min_seasonal_days:
        return out
    lags = np.stack([np.concatenate([np.full(k * period, np.nan), values[: n - k * period]])
                     for k in range(1, config.seasonal_days + 1) if k * period < n], axis=1)
    have = np.sum(~np.isnan(lags), axis=1)
    med = _nanmedian_rows(lags)
    out[have >= config.min_seasonal_days] = med[have >= config.min_seasonal_days]
    return out


def slot_distance(values: np.ndarray, step_s: float, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """Per row, the median over the previous `slot_days` days of the distance from the value to that day's
    min..max within `slot_half_s` of the same time of day (0 inside it); nan without `slot_min_days` days.

    Causal: the slot of day t - k covers rows up to t - k * period + h, before t since h < period."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    out = np.full(n, np.nan)
    period = int(round(DAY_S / step_s)) if step_s > 0 else 0
    half = int(round(config.slot_half_s / step_s)) if step_s > 0 else 0
    if period < 2 or half >= period or n <= period * config.slot_min_days:
        return out
    # a centred filter: row j holds the min/max of x[j - half : j + half + 1] (edge rows repeat x[0])
    high = maximum_filter1d(x, 2 * half + 1, mode="nearest")
    low = minimum_filter1d(x, 2 * half + 1, mode="nearest")
    days = []
    for k in range(1, config.slot_days + 1):
        lag = k * period
        if lag >= n:
            break
        d = np.full(n, np.nan)
        d[lag:] = np.fmax(np.fmax(x[lag:] - high[: n - lag], low[: n - lag] - x[lag:]), 0.0)
        days.append(d)
    stacked = np.stack(days, axis=1)
    have = np.sum(~np.isnan(stacked), axis=1) >= config.slot_min_days
    out[have] = _nanmedian_rows(stacked[have])
    return out


def detect(values, step_s: float = 300.0, config: DetectorConfig = DEFAULT) -> Detection:
    x = np.asarray(values, dtype=float)
    n = len(x)
    nan = np.full(n, np.nan)
    if n == 0:
        return Detection(np.zeros(0), np.zeros(0), nan, nan, nan)
    nines, expected, scale = residual_nines(x, step_s, config)
    score, raw = combine(nines, novelty(x, config), config)
    return Detection(score=score, raw=raw, expected=expected,
                     lower=expected - 3.0 * scale, upper=expected + 3.0 * scale)


def residual_nines(x: np.ndarray, step_s: float, config: DetectorConfig = DEFAULT):
    """(nines, expected, scale) of the residual signal: nines is -log10 of the residual's tail probability
    among the series' recent surprises (2 means p = 0.01), capped at `max_nines`."""
    n = len(x)
    level = _trailing(x, config.window, _median, config.stride)
    seasonal = seasonal_expected(x, step_s, config)
    expected = np.where(np.isnan(seasonal), level, 0.5 * (level + np.nan_to_num(seasonal)))
    resid = x - expected
    resid0 = np.nan_to_num(resid)
    spread = _trailing(resid0, config.window, _mad, config.stride) * 1.4826
    scale_floor = 1e-3 * _trailing(np.abs(x), config.window, _median, config.stride) + 1e-9
    # the typical size of a step-to-step change is a floor for the scale of flat-but-jumpy series
    diffs = np.concatenate([[0.0], np.abs(np.diff(x))])
    step_scale, _ = _trailing_mean_std(diffs, config.window)
    scale = np.fmax(np.fmax(spread, scale_floor), 0.5 * np.nan_to_num(step_scale))
    scale = np.where(np.isnan(scale), np.inf, scale)   # no history yet: no surprise
    z_point = np.abs(resid) / scale
    kernel = np.ones(config.short) / config.short
    short_mean = np.convolve(resid0, kernel)[:n]
    with np.errstate(invalid="ignore"):
        z_shift = np.abs(short_mean) / scale * math.sqrt(config.short) / 2.0
    surprise = np.nan_to_num(np.fmax(z_point, z_shift))
    surprise[: config.min_history] = 0.0
    surprise = np.log1p(surprise)
    # likelihood: the current short mean of surprise against the recent distribution of surprises
    hist_mean, hist_std = _trailing_mean_std(surprise, config.likelihood_window)
    k = np.ones(config.likelihood_short) / config.likelihood_short
    recent = np.convolve(surprise, k)[:n]
    zz = (recent - np.nan_to_num(hist_mean)) / np.fmax(np.nan_to_num(hist_std), config.likelihood_floor)
    # "nines" of the tail probability: 2 means p = 0.01; capped so that far tails stay comparable
    nines = np.clip(-np.log10(np.fmax(ndtr(-zz), 1e-300)), 0.0, config.max_nines)
    # the likelihood needs some history of surprises of its own before it means anything
    nines[: 3 * config.min_history] = 0.0
    # a value the series usually reaches at this time of day is not news (see slot_distance)
    habit = np.nan_to_num(slot_distance(x, step_s, config) / scale, nan=np.inf) <= config.slot_tolerance
    nines[habit] = 0.0
    return np.nan_to_num(nines), expected, scale


def combine(nines: np.ndarray, range_raw: np.ndarray, config: DetectorConfig = DEFAULT):
    """(final score, raw score) from the two signals, each suppressed its own way, then the shared rest.

    The residual signal reports only by how much it rises above the decaying peak of its recent values (a
    level shift keeps it high for hours; only the start reports); the range signal goes quiet for its rest
    period after an alarm (a value rarely stays novel, but a series that moved to new ground sets new records
    for a while)."""
    alarm = config.alarm_level
    residual = suppress(nines, config)
    signals = np.fmax(residual / (residual + 2.0), quiet_after(range_raw, config.range_rest, alarm))
    score = rest_after_alarm(signals, config.rest, alarm)
    raw = np.fmax(nines / (nines + 2.0), range_raw)
    return _rescale(score, alarm), _rescale(raw, alarm)


def _rescale(values: np.ndarray, level: float) -> np.ndarray:
    """Map [0, level] onto [0, 0.5] and [level, 1] onto [0.5, 1]: 0.5 is where a signal alarms."""
    return np.where(values < level, 0.5 * values / level, 0.5 + 0.5 * (values - level) / (1.0 - level))


def trailing_range(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of values[max(0, t-window):t] per row t (nan at t = 0)."""
    n = len(values)
    low = np.full(n, np.nan)
    high = np.full(n, np.nan)
    if n < 2:
        return low, high
    high[1:] = np.maximum.accumulate(values)[:-1]
    low[1:] = np.minimum.accumulate(values)[:-1]
    if n > window:
        view = sliding_window_view(values[:-1], window)   # row i covers values[i:i+window], used at i+window
        high[window:] = view.max(axis=1)
        low[window:] = view.min(axis=1)
    return low, high


def range_signal(x: np.ndarray, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """0 inside the trailing min..max (widened by a margin of the typical step-to-step change, so that the noise
    of a series that just moved does not set record after record); outside it, from the alarm level up
    towards 1 with the excess."""
    low, high = trailing_range(x, config.range_window)
    width = high - low
    width = np.where(width > 0, width, 1e-9 * np.fmax(np.abs(high), 1.0))
    step, _ = _trailing_mean_std(np.concatenate([[0.0], np.abs(np.diff(x))]), config.window)
    margin = config.range_margin * np.nan_to_num(step)
    with np.errstate(invalid="ignore"):
        excess = np.nan_to_num(np.fmax(np.fmax(x - high - margin, low - margin - x), 0.0) / width)
    excess[: config.range_min_history] = 0.0
    level = config.alarm_level
    return np.where(excess > 0, level + (1.0 - level) * np.tanh(excess / config.range_scale), 0.0)


def stuck_signal(x: np.ndarray, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """The alarm level on the row where a run of one repeated value becomes longer than every run in the
    `range_window` rows before it began (and is at least `stuck_min_run` repeats); 0 elsewhere (causal)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    out = np.zeros(n)
    if n < 2:
        return out
    rows = np.arange(n)
    same = np.concatenate([[False], x[1:] == x[:-1]])
    began = np.maximum.accumulate(np.where(same, 0, rows))   # first row of the current run
    run = rows - began                                         # repeats of the current value so far
    _, longest = trailing_range(run.astype(float), config.range_window)
    before = np.nan_to_num(longest[began], nan=0.0)            # the longest run in the window before this one
    fire = (run == np.fmax(before + 1, config.stuck_min_run)) & (rows >= config.range_min_history)
    out[fire] = config.alarm_level
    return out


def novelty(x: np.ndarray, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """The range signal: a value outside the window's range, or a flatline longer than the window's runs."""
    return np.fmax(range_signal(x, config), stuck_signal(x, config))


def quiet_after(raw: np.ndarray, rows: int, level: float, *, restart_while_high: bool = True) -> np.ndarray:
    """0 for `rows` rows after the signal reached `level` (causal). A signal's own rest restarts on every row
    still at the level, reported or not; the shared rest (`restart_while_high=False`) counts from the reported
    alarm only."""
    out = np.zeros_like(raw)
    last = -(rows + 1)
    for t, r in enumerate(raw.tolist()):
        quiet = t - last <= rows
        if not quiet:
            out[t] = r
        if r >= level and (restart_while_high or not quiet):
            last = t
    return out


def rest_after_alarm(raw: np.ndarray, rows: int, level: float) -> np.ndarray:
    """After an alarm (a reported score at `level` or above), report 0 for the next `rows` rows (causal)."""
    return quiet_after(raw, rows, level, restart_while_high=False)


def suppress(raw: np.ndarray, config: DetectorConfig = DEFAULT) -> np.ndarray:
    """(The multivariate detector's suppression.) Report only by how much a raw score rises above the decaying peak of earlier raw scores (causal):
    the first row of an event reports nearly all of it, the rows after it report 0 (or the small rise of a
    worsening), so one event crosses a threshold once."""
    decay = 0.5 ** (1.0 / config.hold_halflife)
    out = np.zeros_like(raw)
    peak = 0.0
    for t, r in enumerate(raw.tolist()):
        if r > peak:
            out[t] = r - peak
        peak = max(peak * decay, r)
    return out


@dataclass(frozen=True)
class Event:
    start: int           # row where the final score first crossed the threshold
    end: int | None      # first row back to normal (raw score under half the threshold); None: still open
    peak: float          # the highest final score of the event


def events(detection: Detection, threshold: float) -> list[Event]:
    """One event per alarm: it opens where the final score reaches `threshold` and closes when the raw score
    falls under half of it; a further alarm while it is open belongs to the same event."""
    found: list[Event] = []
    start = None
    peak = 0.0
    for t, (final, raw) in enumerate(zip(detection.score.tolist(), detection.raw.tolist(), strict=True)):
        if start is None:
            if final >= threshold:
                start, peak = t, final
            continue
        peak = max(peak, final)
        if raw < threshold / 2:
            found.append(Event(start=start, end=t, peak=peak))
            start = None
    if start is not None:
        found.append(Event(start=start, end=None, peak=peak))
    return found


@dataclass
class MultivariateResult:
    score: np.ndarray                 # per scored row, in [0, 1] after repeat suppression
    raw: np.ndarray
    drivers: list[list[dict]]         # per scored row: the signals sorted by how far off they were


def multivariate(matrix: np.ndarray, names: list[str], train_rows: int, *, seed: int = 0,
                 config: DetectorConfig = DEFAULT) -> MultivariateResult:
    """IsolationForest over several signals of one endpoint (latency, error rate, rps, CPU...).

    Fitted on the first `train_rows` rows only; the rows after them are scored, so a score never uses the
    future. The forest's anomaly score becomes an empirical tail probability among the training rows' scores,
    as "nines" like the univariate detector (or the largest single-signal robust z-score, if that says
    more); the same repeat suppression follows.
    """
    from sklearn.ensemble import IsolationForest

    X = np.asarray(matrix, dtype=float)
    train = X[:train_rows]
    test = X[train_rows:]
    if len(train) < 10 or len(test) == 0:
        return MultivariateResult(np.zeros(len(test)), np.zeros(len(test)), [[] for _ in range(len(test))])
    med = np.median(train, axis=0)
    spread = 1.4826 * np.median(np.abs(train - med), axis=0)
    spread = np.where(spread > 0, spread, np.maximum(np.abs(med) * 1e-3, 1e-9))
    forest = IsolationForest(n_estimators=100, random_state=seed).fit((train - med) / spread)
    train_scores = np.sort(-forest.score_samples((train - med) / spread))
    test_scores = -forest.score_samples((test - med) / spread)
    # empirical tail: the share of training rows at least as anomalous (at best 1 / (n + 1))
    at_least = len(train_scores) - np.searchsorted(train_scores, test_scores, side="left")
    forest_nines = -np.log10((at_least + 1) / (len(train_scores) + 1))
    # The forest is weak at a far outlier in one signal while the others are normal; the largest robust
    # z-score of any one signal (two-sided, Bonferroni over the signals) covers that case.
    z = (test - med) / spread
    signal_nines = -np.log10(np.fmax(np.minimum(1.0, 2 * X.shape[1] * ndtr(-np.max(np.abs(z), axis=1))), 1e-300))
    nines = np.clip(np.fmax(forest_nines, signal_nines), 0.0, config.max_nines)
    raw = nines / (nines + 2.0)
    final = suppress(nines, config)
    drivers = []
    for row in z:
        order = np.argsort(-np.abs(row), kind="stable")
        drivers.append([{"signal": names[i], "z": round(float(row[i]), 2)} for i in order])
    return MultivariateResult(score=final / (final + 2.0), raw=raw, drivers=drivers)
