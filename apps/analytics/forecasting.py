"""Forecasts with 80 % intervals for one regular series (pure numpy/scikit-learn, no Django).

Two candidates per series, chosen by a rolling-origin backtest on the series' own recent past (origins a
day apart, at least 7 and enough to span two horizons, the last one a horizon before the end; one model
fitted before the first origin):
- seasonal-naive: the value one season earlier (weekly when two weeks of history exist, else daily), with
  an interval from the empirical 10 %/90 % quantiles of its own past errors at that lag;
- gradient boosting (`HistGradientBoostingRegressor`, quantile loss at 0.1 / 0.5 / 0.9): one direct model
  for every horizon 1..H, on calendar features (hour of day, day of week), the horizon, same-time values
  known at the origin (one week and two weeks before the target, the latest same time of day), the
  level at the origin and the recent lift (how far the last 6 h, day and week ran above or below the usual
  week, the median of the same steps over the three weeks before); values are scaled by the origin's trailing week so the model carries across levels
  and trends. Its median is averaged with a seasonal blend (the median of the same hour over the last three
  weeks), which errs differently; the interval is conformalised with the backtest's errors of that
  combined forecast so its coverage holds out of sample.
The boosted model is chosen only when its backtest MASE beats seasonal-naive's; with less than four weeks
of history it is not tried. Everything is seeded: the same input gives the same output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

HOUR_S = 3600
DAY_S = 86_400
WEEK_S = 7 * DAY_S

SEASONAL_NAIVE = "seasonal_naive"
GRADIENT_BOOSTING = "gradient_boosting"


@dataclass(frozen=True)
class ForecastConfig:
    """One configuration for every series (never tuned per series)."""

    min_weeks_for_model: float = 4.0     # weeks of history before the boosted model is tried
    max_train_weeks: float = 16.0        # only the most recent weeks are used to fit
    backtest_origins: int = 7            # rolling origins of the backtest (at least)
    backtest_span_horizons: float = 2.0  # and enough of them a day apart to span this many horizons
    horizons_per_origin: int = 12        # training rows per origin (sampled horizons, seeded)
    max_train_rows: int = 4_000
    max_iter: int = 80                   # boosting rounds of the median model
    bound_max_iter: int = 50             # and of each interval bound (quantile loss is the slow part)
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    win_margin: float = 1.0              # the model must reach MASE < seasonal-naive's * this
    blend_weeks: int = 3                 # the boosted point is averaged with the median of this many seasons
    lift_hours: tuple = (6, 24, 168)     # recent lift: mean deviation from the usual week over these hours
    origin_spacing_s: float = DAY_S      # backtest origins this far apart, the last one a horizon before the
                                         # end (0: a horizon apart, the last one at the end)
    level: float = 0.8                   # interval coverage
    seed: int = 0


DEFAULT = ForecastConfig()


@dataclass
class Forecast:
    start_s: float                      # timestamp (epoch s) of the first forecast step
    step_s: float
    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model: str
    backtest: dict = field(default_factory=dict)   # {"mase_model", "mase_seasonal_naive", "origins", ...}

    def timestamps(self) -> np.ndarray:
        return self.start_s + self.step_s * np.arange(len(self.point))


def periods(step_s: float) -> tuple[int, int]:
    """(daily, weekly) season lengths in steps."""
    return max(1, int(round(DAY_S / step_s))), max(1, int(round(WEEK_S / step_s)))


def _season(n: int, step_s: float) -> int:
    day, week = periods(step_s)
    if n >= 2 * week:
        return week
    if n >= 2 * day:
        return day
    return 1


def seasonal_naive(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """y[t + h] = y[t + h - season * ceil(h / season)] for h = 1..horizon, from the end of y."""
    n = len(y)
    h = np.arange(1, horizon + 1)
    back = season * np.ceil(h / season).astype(int)
    return y[n - 1 + h - back]


def mase_scale(y: np.ndarray, season: int) -> float:
    """The in-sample mean absolute error of the seasonal-naive one-season-back forecast (MASE's denominator)."""
    if len(y) <= season:
        return float(np.mean(np.abs(np.diff(y)))) if len(y) > 1 else 1.0
    scale = float(np.mean(np.abs(y[season:] - y[:-season])))
    return scale if scale > 0 else 1e-9


def _naive_interval(y: np.ndarray, point: np.ndarray, season: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of the past errors of the same lag structure, widened for horizons past one season."""
    alpha = (1 - level) / 2
    horizon = len(point)
    lower = np.empty(horizon)
    upper = np.empty(horizon)
    for k in range(int(math.ceil(horizon / season))):
        lag = season * (k + 1)
        errors = y[lag:] - y[:-lag] if len(y) > lag else np.zeros(1)
        errors = errors[-max(season * 4, 50):]
        lo, hi = np.quantile(errors, [alpha, 1 - alpha])
        sl = slice(k * season, min(horizon, (k + 1) * season))
        lower[sl] = np.minimum(point[sl] + lo, point[sl])
        upper[sl] = np.maximum(point[sl] + hi, point[sl])
    return lower, upper


def _blend_base(y: np.ndarray, target: np.ndarray, n: int, season: int, weeks: int) -> np.ndarray:
    """Median over `weeks` seasons of the values one, two, ... seasons before each target, reading y[:n] only."""
    h = target - (n - 1)
    first = np.ceil(np.maximum(h, 1) / season).astype(int)
    back = target[None, :] - (first[None, :] + np.arange(weeks)[:, None]) * season
    vals = np.where(back >= 0, y[np.clip(back, 0, None)], np.nan)
    return np.nanmedian(vals, axis=0)


def seasonal_blend(y: np.ndarray, horizon: int, season: int, weeks: int = 3) -> np.ndarray:
    """The median of the same step over the last `weeks` seasons: seasonal-naive made robust to one odd week."""
    n = len(y)
    return _blend_base(y, np.arange(n, n + horizon), n, season, weeks)


def _combine(pred: dict[float, np.ndarray], blend: np.ndarray) -> dict[float, np.ndarray]:
    """Average the boosted median with the seasonal blend and move its bounds along with it. The two err in
    different ways (the trees on level changes and rare calendar cells, the blend on one odd week), so the
    average is steadier than either, and steadier than picking one on three backtest origins.
    The interval is conformalised afterwards with the backtest's errors of this combined forecast."""
    shift = (blend - pred[0.5]) / 2
    return {q: v + shift for q, v in pred.items()}


class _Features:
    """Direct multi-horizon features for target time index T forecast from origin index o = T - h."""

    def __init__(self, y: np.ndarray, start_s: float, step_s: float, lift_hours: tuple = ()):
        self.y = y
        self.start_s = start_s
        self.step_s = step_s
        self.day, self.week = periods(step_s)
        c = np.concatenate([[0.0], np.cumsum(y)])
        self.cumsum = c
        self.lift_steps = [max(1, int(round(hours * HOUR_S / step_s))) for hours in lift_hours]
        if self.lift_steps:
            # deviation of each value from the usual week: the median of the same step over the 3 weeks before
            n = len(y)
            idx = np.arange(n)[None, :] - self.week * np.arange(1, 4)[:, None]
            usual = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
            have = np.sum(~np.isnan(usual), axis=0) > 0
            dev = np.zeros(n)
            dev[have] = y[have] - np.nanmedian(usual[:, have], axis=0)
            self.dev_cumsum = np.concatenate([[0.0], np.cumsum(dev)])
            self.first_dev = self.week

    def _mean(self, end: np.ndarray, length: int) -> np.ndarray:
        end = np.maximum(end, 0)
        lo = np.maximum(0, end + 1 - length)
        return (self.cumsum[end + 1] - self.cumsum[lo]) / (end + 1 - lo)

    def _at(self, idx: np.ndarray) -> np.ndarray:
        out = np.full(len(idx), np.nan)
        ok = (idx >= 0) & (idx < len(self.y))
        out[ok] = self.y[idx[ok]]
        return out

    def build(self, origin: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, level, scale) for rows (origin, h); targets are (y[T] - level) / scale."""
        target = origin + h
        level = self._mean(origin, self.week)
        recent = self._mean(origin, self.day)
        absdev = self._mean_abs_dev(origin, level)
        scale = np.where(absdev > 0, absdev, np.maximum(np.abs(level), 1.0) * 1e-3)
        t_s = self.start_s + target * self.step_s
        hour = np.floor((t_s % DAY_S) / 3600.0)
        dow = np.floor(((t_s // DAY_S) + 3) % 7)   # 1970-01-01 was a Thursday: 0 = Monday
        same_day = target - self.day * np.ceil(h / self.day).astype(int)
        lag_w = target - self.week * np.ceil(h / self.week).astype(int)
        lag_2w = lag_w - self.week

        def norm(v):
            return (v - level) / scale

        prev_level = self._mean(origin - self.week, self.week)
        columns = [
            hour, dow, h,
            norm(self._at(lag_w)), norm(self._at(lag_2w)), norm(self._at(same_day)),
            norm(self._at(origin)), norm(recent),
            np.where(origin - self.week >= 0, norm(prev_level), np.nan),
        ]
        for steps in self.lift_steps:
            lo = origin + 1 - steps
            ok = lo >= self.first_dev
            lift = (self.dev_cumsum[origin + 1] - self.dev_cumsum[np.maximum(lo, 0)]) / steps
            columns.append(np.where(ok, lift / scale, np.nan))
        return np.column_stack(columns), level, scale

    def _mean_abs_dev(self, origin: np.ndarray, level: np.ndarray) -> np.ndarray:
        # mean |y - level| over the trailing week, via the series' own cumulative sums of |y - running mean|
        # (approximated by the trailing std, which cumulative sums give exactly)
        c2 = np.concatenate([[0.0], np.cumsum(self.y * self.y)])
        lo = np.maximum(0, origin + 1 - self.week)
        count = origin + 1 - lo
        mean2 = (c2[origin + 1] - c2[lo]) / count
        return np.sqrt(np.maximum(mean2 - level * level, 0.0))


def _fit_models(y: np.ndarray, start_s: float, step_s: float, horizon: int, config: ForecastConfig,
                quantiles: tuple[float, ...]):
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = _Features(y, start_s, step_s, config.lift_hours)
    n = len(y)
    rng = np.random.default_rng(config.seed)
    first = max(features.day, 1)
    origins = np.arange(first, n - 1)
    h = rng.integers(1, horizon + 1, size=(len(origins), config.horizons_per_origin))
    o = np.repeat(origins, config.horizons_per_origin)
    h = h.ravel()
    keep = o + h < n
    o, h = o[keep], h[keep]
    if len(o) > config.max_train_rows:
        pick = np.sort(rng.choice(len(o), size=config.max_train_rows, replace=False))
        o, h = o[pick], h[pick]
    X, level, scale = features.build(o, h)
    target = (y[o + h] - level) / scale
    models = {}
    for q in quantiles:
        median = q == 0.5
        model = HistGradientBoostingRegressor(
            loss="absolute_error" if median else "quantile", quantile=None if median else q,
            max_iter=config.max_iter if median else config.bound_max_iter,
            learning_rate=config.learning_rate if median else config.learning_rate * 1.5,
            max_leaf_nodes=config.max_leaf_nodes, min_samples_leaf=config.min_samples_leaf,
            categorical_features=[0, 1], random_state=config.seed, early_stopping=False,
        )
        model.fit(X, target)
        models[q] = model
    return features, models


def _predict(features: _Features, models: dict, origin: int, horizon: int) -> dict[float, np.ndarray]:
    h = np.arange(1, horizon + 1)
    o = np.full(horizon, origin)
    X, level, scale = features.build(o, h)
    return {q: m.predict(X) * scale + level for q, m in models.items()}


def _gbm_forecast(y, start_s, step_s, horizon, config, quantiles=(0.1, 0.5, 0.9)):
    features, models = _fit_models(y, start_s, step_s, horizon, config, quantiles)
    return _predict(features, models, len(y) - 1, horizon)


def _backtest(y: np.ndarray, start_s: float, step_s: float, horizon: int, season: int,
              config: ForecastConfig) -> dict:
    """Rolling origins over the last `backtest_origins * horizon` steps: MASE of each candidate, and the
    conformal widening that brings the model's interval to the wanted coverage on those origins.

    One model is fitted on the data before the first origin and forecasts from every origin (features at an
    origin only read rows up to it), so no origin sees its own future."""
    n = len(y)
    if config.origin_spacing_s > 0:
        spacing = max(1, int(round(config.origin_spacing_s / step_s)))
        count = max(config.backtest_origins, int(math.ceil(config.backtest_span_horizons * horizon / spacing)) + 1)
        cuts = [n - horizon - k * spacing for k in range(count - 1, -1, -1)]
    else:
        spacing = horizon
        cuts = [n - k * horizon for k in range(config.backtest_origins, 0, -1)]
    cuts = [c for c in cuts if c >= max(2 * season, 2 * periods(step_s)[1])]
    if not cuts:
        return {}
    _, models = _fit_models(y[:cuts[0]], start_s, step_s, horizon, config, (0.1, 0.5, 0.9))
    features = _Features(y, start_s, step_s, config.lift_hours)
    scale = mase_scale(y[:cuts[0]], season)
    errs_model, errs_naive, conform = [], [], []
    for cut in cuts:
        future = y[cut:cut + horizon]
        pred = _combine(_predict(features, models, cut - 1, horizon),
                        seasonal_blend(y[:cut], horizon, season, config.blend_weeks))
        naive = seasonal_naive(y[:cut], horizon, season)
        errs_model.append(np.abs(future - pred[0.5]))
        errs_naive.append(np.abs(future - naive))
        conform.append(np.maximum(pred[0.1] - future, future - pred[0.9]))
    mase_model = float(np.mean(np.concatenate(errs_model)) / scale)
    mase_naive = float(np.mean(np.concatenate(errs_naive)) / scale)
    scores = np.concatenate(conform)
    widen = float(np.quantile(scores, min(1.0, config.level * (1 + 1 / len(scores)))))
    return {"mase_model": mase_model, "mase_seasonal_naive": mase_naive, "origins": len(cuts),
            "origin_spacing_steps": spacing, "season_steps": season, "widen": widen}


def forecast(values, *, start_s: float, step_s: float, horizon: int,
             config: ForecastConfig = DEFAULT) -> Forecast:
    """Forecast `horizon` steps after the last of `values` (a regular series starting at `start_s`).

    Runs on one thread: the result is then the same bit for bit whatever the machine's core count."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _forecast(values, start_s=start_s, step_s=step_s, horizon=horizon, config=config)


def _forecast(values, *, start_s: float, step_s: float, horizon: int, config: ForecastConfig) -> Forecast:
    y = np.asarray(values, dtype=float)
    if len(y) == 0:
        raise ValueError("an empty series has no forecast")
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    _, week = periods(step_s)
    keep = int(config.max_train_weeks * week)
    if len(y) > keep:
        start_s = start_s + (len(y) - keep) * step_s
        y = y[-keep:]
    n = len(y)
    season = _season(n, step_s)
    next_s = start_s + n * step_s
    naive = seasonal_naive(y, horizon, season)
    backtest: dict = {"season_steps": season}
    if n >= config.min_weeks_for_model * week:
        backtest = _backtest(y, start_s, step_s, horizon, season, config) or backtest
    model_wins = ("mase_model" in backtest
                  and backtest["mase_model"] < backtest["mase_seasonal_naive"] * config.win_margin)
    if model_wins:
        pred = _combine(_gbm_forecast(y, start_s, step_s, horizon, config),
                        seasonal_blend(y, horizon, season, config.blend_weeks))
        widen = backtest.get("widen", 0.0)
        point = pred[0.5]
        lower = np.minimum(pred[0.1] - widen, point)
        upper = np.maximum(pred[0.9] + widen, point)
        model = GRADIENT_BOOSTING
    else:
        point = naive
        lower, upper = _naive_interval(y, point, season, config.level)
        model = SEASONAL_NAIVE
    backtest.pop("widen", None)
    return Forecast(start_s=next_s, step_s=step_s, point=point, lower=lower, upper=upper, model=model,
                    backtest={k: (round(v, 6) if isinstance(v, float) else v) for k, v in backtest.items()})


def linear_trend(y: np.ndarray, horizon: int, window: int) -> np.ndarray:
    """A `predict_linear`-style forecast: least squares line over the last `window` points, extended."""
    tail = y[-window:]
    t = np.arange(len(tail))
    slope, intercept = np.polyfit(t, tail, 1) if len(tail) > 1 else (0.0, float(tail[-1]))
    return intercept + slope * (len(tail) - 1 + np.arange(1, horizon + 1))


def crossing_index(point: np.ndarray, threshold: float) -> int | None:
    """The first step whose forecast reaches `threshold` (from below, or at once if already above)."""
    hit = np.nonzero(point >= threshold)[0]
    return int(hit[0]) if len(hit) else None
