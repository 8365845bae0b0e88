"""Ingested series points, stored forecasts (with their model choice and backtest) and detected anomalies."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.tenancy.models import TenantOwned

SERIES_MAX_LENGTH = 300


class SeriesPoint(TenantOwned):
    """One point of a series a tenant pushed (`POST /api/v1/analytics/points`): the built-in series source."""

    series = models.CharField(max_length=SERIES_MAX_LENGTH)
    timestamp = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["series", "timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "series", "timestamp"], name="analytics_point_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.series} @ {self.timestamp:%Y-%m-%d %H:%M}"


class ForecastModel(models.TextChoices):
    SEASONAL_NAIVE = "seasonal_naive", "Seasonal-naive"
    GRADIENT_BOOSTING = "gradient_boosting", "Gradient boosting (quantile loss)"


class Forecast(TenantOwned):
    """The latest forecast of one series at one horizon; `points` is [[iso time, forecast, lower80, upper80]]."""

    series = models.CharField(max_length=SERIES_MAX_LENGTH)
    horizon = models.PositiveIntegerField(help_text="Steps ahead (hours at the default step).")
    step_s = models.PositiveIntegerField(default=3600)
    generated_at = models.DateTimeField(default=timezone.now)
    history_points = models.PositiveIntegerField(default=0)
    model = models.CharField(max_length=32, choices=ForecastModel.choices)
    points = models.JSONField(default=list)
    backtest = models.JSONField(default=dict, blank=True,
                                help_text="Rolling-origin backtest: MASE of the model and of seasonal-naive.")
    mase_model = models.FloatField(null=True, blank=True)
    mase_seasonal_naive = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="The series' critical threshold, if known.")
    threshold_crossing_at = models.DateTimeField(
        null=True, blank=True, help_text="When the forecast first reaches the threshold (None: not in the horizon).")

    class Meta:
        ordering = ["series", "horizon"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "series", "horizon"], name="analytics_forecast_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.series} +{self.horizon}"


class AnomalyKind(models.TextChoices):
    SERIES = "series", "One series (seasonal robust score)"
    ENDPOINT = "endpoint", "Endpoint (multivariate IsolationForest)"


class Anomaly(TenantOwned):
    """One event (not one point): opened when the suppressed score crosses the threshold, closed when the
    series is back in its expected range. `signals` says which series drove it and how far off each was."""

    kind = models.CharField(max_length=16, choices=AnomalyKind.choices, default=AnomalyKind.SERIES)
    series = models.CharField(max_length=SERIES_MAX_LENGTH, help_text="Series key, or the endpoint's route.")
    score = models.FloatField(help_text="Final anomaly score in [0, 1] at the start of the event.")
    value = models.FloatField(null=True, blank=True)
    expected_low = models.FloatField(null=True, blank=True)
    expected_high = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="None while the event is still going on.")
    signals = models.JSONField(default=list, blank=True)
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "anomalies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "series", "started_at"],
                                    name="analytics_anomaly_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "started_at"], name="analytics_anomaly_recent")]

    def __str__(self) -> str:
        return f"{self.series} @ {self.started_at:%Y-%m-%d %H:%M}"
