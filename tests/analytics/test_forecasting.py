"""Forecast model selection, intervals and fallbacks (pure code)."""
from __future__ import annotations

import numpy as np
import pytest

from apps.analytics import forecasting
from tests.analytics.series import HOUR, MONDAY, seasonal_hourly


def test_the_boosted_model_wins_on_a_noisy_seasonal_series_and_beats_seasonal_naive():
    y = seasonal_hourly(7, seed=1, noise=0.1)
    past, future = y[:-24], y[-24:]
    result = forecasting.forecast(past, start_s=MONDAY, step_s=HOUR, horizon=24)
    assert result.model == forecasting.GRADIENT_BOOSTING
    assert result.backtest["mase_model"] < result.backtest["mase_seasonal_naive"]
    naive = forecasting.seasonal_naive(past, 24, 168)
    assert np.mean(np.abs(future - result.point)) < np.mean(np.abs(future - naive))


def test_it_falls_back_to_seasonal_naive_where_the_week_repeats_exactly():
    y = seasonal_hourly(6, seed=2, noise=0.0)
    result = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=24)
    assert result.model == forecasting.SEASONAL_NAIVE
    assert result.backtest["mase_seasonal_naive"] <= result.backtest["mase_model"]
    assert np.allclose(result.point, y[-168:-144])


def test_under_four_weeks_it_is_seasonal_naive_without_a_backtest():
    y = seasonal_hourly(3, seed=3)
    result = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=48)
    assert result.model == forecasting.SEASONAL_NAIVE
    assert "mase_model" not in result.backtest
    assert result.backtest["season_steps"] == 168
    short = forecasting.forecast(y[:72], start_s=MONDAY, step_s=HOUR, horizon=5)
    assert short.backtest["season_steps"] == 24    # under two weeks: the daily season
    assert np.all(short.lower <= short.point) and np.all(short.point <= short.upper)


def test_80_percent_intervals_cover_about_80_percent_of_what_follows():
    inside = total = 0
    for seed in (11, 12):
        y = seasonal_hourly(6, seed=seed, noise=0.1)
        past, future = y[:-168], y[-168:]
        result = forecasting.forecast(past, start_s=MONDAY, step_s=HOUR, horizon=168)
        inside += int(np.sum((future >= result.lower) & (future <= result.upper)))
        total += len(future)
    assert 0.65 <= inside / total <= 0.95, inside / total


def test_the_same_input_gives_the_same_forecast():
    y = seasonal_hourly(5, seed=4)
    a = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=24)
    b = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=24)
    assert np.array_equal(a.point, b.point) and np.array_equal(a.lower, b.lower) and a.backtest == b.backtest


def test_crossing_index_is_the_first_step_at_or_above_the_threshold():
    assert forecasting.crossing_index(np.array([1.0, 2.0, 5.0, 3.0, 6.0]), 5.0) == 2
    assert forecasting.crossing_index(np.array([1.0, 2.0]), 5.0) is None


def test_the_seasonal_blend_shrugs_off_one_odd_week_where_seasonal_naive_copies_it():
    y = seasonal_hourly(5, seed=5, noise=0.05)
    y[-168:-144] *= 1.6          # last week's Monday was a one-off (an outage, a holiday)
    blend = forecasting.seasonal_blend(y, 24, 168)
    naive = forecasting.seasonal_naive(y, 24, 168)
    typical = seasonal_hourly(6, seed=5, noise=0.0)[-168:-144]   # the noiseless shape of the next Monday
    assert np.mean(np.abs(blend - typical)) < 0.5 * np.mean(np.abs(naive - typical))


def test_the_boosted_forecast_is_averaged_with_the_seasonal_blend_and_beats_seasonal_naive_across_a_shift():
    y = seasonal_hourly(8, seed=6, noise=0.1)
    y[-400:] *= 1.15             # a level shift a little over two weeks before the end
    y[-168 - 30:-168 - 20] *= 2.0   # and a burst last week that seasonal-naive would repeat
    past, future = y[:-24], y[-24:]
    result = forecasting.forecast(past, start_s=MONDAY, step_s=HOUR, horizon=24)
    assert result.model == forecasting.GRADIENT_BOOSTING
    boosted = forecasting._gbm_forecast(past, MONDAY, HOUR, 24, forecasting.DEFAULT)[0.5]
    blend = forecasting.seasonal_blend(past, 24, 168)
    assert np.allclose(result.point, (boosted + blend) / 2)
    naive = forecasting.seasonal_naive(past, 24, 168)
    assert np.mean(np.abs(future - result.point)) < 0.9 * np.mean(np.abs(future - naive))
    assert np.all(result.lower <= result.point) and np.all(result.point <= result.upper)


def test_recent_lift_features_are_the_mean_deviation_from_the_usual_week():
    y = seasonal_hourly(6, seed=7, noise=0.05)
    features = forecasting._Features(y, MONDAY, HOUR, lift_hours=(6, 24))
    origin = len(y) - 1
    X, level, scale = features.build(np.array([origin]), np.array([5]))
    usual = np.median(np.stack([y[origin - 5 - 168 * k:origin + 1 - 168 * k] for k in (1, 2, 3)]), axis=0)
    assert X[0, -2] == pytest.approx(np.mean(y[origin - 5:origin + 1] - usual) / scale[0])
    assert X.shape[1] == 9 + 2
    # too early for a lift: no week-old values to compare with yet
    early, _, _ = features.build(np.array([100]), np.array([1]))
    assert np.isnan(early[0, -1]) and np.isnan(early[0, -2])


def test_the_backtest_origins_are_a_day_apart_and_span_two_horizons():
    y = seasonal_hourly(9, seed=9, noise=0.1)
    day = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=24)
    assert day.backtest["origins"] == forecasting.DEFAULT.backtest_origins == 7
    assert day.backtest["origin_spacing_steps"] == 24
    week = forecasting.forecast(y, start_s=MONDAY, step_s=HOUR, horizon=168)
    assert week.backtest["origins"] == 15      # two weeks of origins a day apart
    assert week.backtest["origin_spacing_steps"] == 24
