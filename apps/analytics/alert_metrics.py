"""Analytics' figures as alert rule metric kinds (`apps.core.metric_kinds`), registered by `AnalyticsConfig.ready`:

- `forecast_crossing_s` (seconds, label `series`): how long until the series' latest forecast reaches its
  critical threshold, the capacity question as an alert ("disk full within 2 days");
- `anomaly_score` (score in [0, 1], labels `series`, `route`): the highest score of the anomalies going on
  in the window; 0.5 and above is an alarm (repeat suppression is already applied, one anomaly per event).
"""
from __future__ import annotations

from apps.analytics import selectors
from apps.core.metric_kinds import MetricKind, register

FORECAST_CROSSING_S = "forecast_crossing_s"
ANOMALY_SCORE = "anomaly_score"


def register_kinds() -> None:
    register(MetricKind(
        name=FORECAST_CROSSING_S, unit="seconds", labels=("series",),
        description="Seconds until the series' forecast reaches its critical threshold (no reading if not "
                    "within the forecast horizon)",
        read=selectors.forecast_crossing_readings,
    ))
    register(MetricKind(
        name=ANOMALY_SCORE, unit="score", labels=("series", "route"),
        description="Highest anomaly score of the series (or endpoint) during the window; 0.5 and above is "
                    "an alarm, one per event",
        read=selectors.anomaly_score_readings,
    ))
