"""Every write of analytics: ingesting points, refreshing forecasts, detecting anomalies."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.analytics import detection, forecasting, sources
from apps.analytics.conf import analytics_settings
from apps.analytics.models import Anomaly, AnomalyKind, Forecast, SeriesPoint
from apps.analytics.series import Series, regularise
from apps.core import live
from apps.core.errors import ApplicationError

MIN_FORECAST_POINTS = 3
ENDPOINT_SIGNALS = ("endpoint_p95_ms", "endpoint_error_rate", "endpoint_rps")
HOST_SIGNAL = "cpu_percent"


def _field_error(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, extra={"errors": {field: [message]}})


@transaction.atomic
def points_ingest(*, tenant, series: str, points: list[tuple[datetime, float]], now: datetime | None = None) -> int:
    """Store (or overwrite) points of an `ingested:` series; all or nothing. Returns how many were written."""
    kind, _, name = series.partition(":")
    if kind != sources.INGESTED or not name:
        raise _field_error("series", "Only `ingested:<name>` series can be pushed.")
    if len(points) > analytics_settings.INGEST_MAX_POINTS:
        raise _field_error("points", f"At most {analytics_settings.INGEST_MAX_POINTS} points per request.")
    existing = SeriesPoint.objects.for_tenant(tenant)
    if (not existing.filter(series=series).exists()
            and existing.values("series").distinct().count() >= analytics_settings.INGEST_MAX_SERIES):
        raise _field_error("series", f"At most {analytics_settings.INGEST_MAX_SERIES} ingested series per tenant.")
    now = now or timezone.now()
    oldest = now - timedelta(days=analytics_settings.INGEST_RETENTION_DAYS)
    rows = {}
    for timestamp, value in points:
        rows[timestamp] = SeriesPoint(tenant=tenant, series=series, timestamp=timestamp, value=value)
    SeriesPoint.objects.bulk_create(list(rows.values()), update_conflicts=True,
                                    unique_fields=["tenant", "series", "timestamp"], update_fields=["value"])
    SeriesPoint.objects.for_tenant(tenant).filter(series=series, timestamp__lt=oldest).delete()
    return len(rows)


def _regular_series(*, tenant, series: str, start: datetime, end: datetime, step_s: int) -> Series:
    points = sources.read_series(tenant=tenant, series=series, start=start, end=end, step_s=step_s)
    if not points:
        return Series(np.zeros(0), np.zeros(0), float(step_s))
    ts = np.array([p[0].timestamp() for p in points], dtype=float)
    values = np.array([float(p[1]) for p in points], dtype=float)
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    finite = np.isfinite(values)
    ts, values = ts[finite], values[finite]
    if len(ts) == 0:
        return Series(np.zeros(0), np.zeros(0), float(step_s))
    # Align the grid on whole steps so that every refresh buckets the same way.
    first = math.floor(ts[0] / step_s) * step_s
    return regularise(np.concatenate([[first], ts]), np.concatenate([[values[0]], values]), float(step_s))


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def forecast_points(result: forecasting.Forecast) -> list[list]:
    return [[_dt(t).isoformat(), round(float(p), 6), round(float(lo), 6), round(float(hi), 6)]
            for t, p, lo, hi in zip(result.timestamps(), result.point, result.lower, result.upper, strict=True)]


def crossing_time(points: list[list], threshold: float | None) -> datetime | None:
    """When the stored forecast first reaches `threshold` (the capacity question); None if not in the horizon."""
    if threshold is None or not points:
        return None
    index = forecasting.crossing_index(np.array([p[1] for p in points], dtype=float), threshold)
    return None if index is None else datetime.fromisoformat(points[index][0])


@transaction.atomic
def forecast_refresh(*, tenant, series: str, horizon: int | None = None, threshold: float | None = None,
                     now: datetime | None = None) -> Forecast:
    """Forecast one series from its recent history and store it (one row per series and horizon)."""
    now = now or timezone.now()
    horizon = horizon or analytics_settings.FORECAST_HORIZON
    step_s = analytics_settings.FORECAST_STEP_S
    start = now - timedelta(days=analytics_settings.FORECAST_HISTORY_DAYS)
    history = _regular_series(tenant=tenant, series=series, start=start, end=now, step_s=step_s)
    if len(history.values) < MIN_FORECAST_POINTS:
        raise _field_error("series", f"{series!r} has fewer than {MIN_FORECAST_POINTS} points in the last "
                                     f"{analytics_settings.FORECAST_HISTORY_DAYS} days.")
    result = forecasting.forecast(history.values, start_s=history.start_s, step_s=step_s, horizon=horizon)
    points = forecast_points(result)
    if threshold is None:
        threshold = sources.critical_threshold(series, tenant=tenant)
    forecast, _ = Forecast.objects.update_or_create(
        tenant=tenant, series=series, horizon=horizon,
        defaults={
            "step_s": step_s, "generated_at": now, "history_points": len(history.values), "model": result.model,
            "points": points, "backtest": result.backtest,
            "mase_model": result.backtest.get("mase_model"),
            "mase_seasonal_naive": result.backtest.get("mase_seasonal_naive"),
            "threshold": threshold, "threshold_crossing_at": crossing_time(points, threshold),
        },
    )
    payload = {"id": forecast.pk, "series": series, "horizon": horizon, "model": forecast.model,
               "generated_at": now.isoformat(), "threshold": threshold,
               "threshold_crossing_at": (forecast.threshold_crossing_at.isoformat()
                                         if forecast.threshold_crossing_at else None)}
    transaction.on_commit(lambda: live.publish(tenant.pk, "forecast.refreshed", payload))
    return forecast


def _store_events(*, tenant, kind: str, series: str, timestamps: np.ndarray, found: list[detection.Event],
                  describe) -> list[Anomaly]:
    stored = []
    for event in found:
        fields = describe(event)
        fields["ended_at"] = None if event.end is None else _dt(timestamps[event.end])
        anomaly, created = Anomaly.objects.update_or_create(
            tenant=tenant, kind=kind, series=series, started_at=_dt(timestamps[event.start]), defaults=fields)
        stored.append(anomaly)
        if created:   # a re-run of the detector over the same history updates the event, it is not news
            _publish_anomaly(anomaly)
    return stored


def _publish_anomaly(anomaly: Anomaly) -> None:
    """Tell the console, once the row is committed (a rolled-back detection run announces nothing)."""
    payload = {"id": anomaly.pk, "kind": anomaly.kind, "series": anomaly.series, "score": anomaly.score,
               "started_at": anomaly.started_at.isoformat(),
               "ended_at": anomaly.ended_at.isoformat() if anomaly.ended_at else None,
               "value": anomaly.value, "expected_low": anomaly.expected_low,
               "expected_high": anomaly.expected_high, "signals": anomaly.signals[:3]}
    transaction.on_commit(lambda: live.publish(anomaly.tenant_id, "anomaly.detected", payload))


@transaction.atomic
def series_detect(*, tenant, series: str, now: datetime | None = None) -> list[Anomaly]:
    """Score one series online over its recent history and store one `Anomaly` per event."""
    now = now or timezone.now()
    step_s = analytics_settings.DETECT_STEP_S
    start = now - timedelta(hours=analytics_settings.DETECT_HISTORY_HOURS)
    history = _regular_series(tenant=tenant, series=series, start=start, end=now, step_s=step_s)
    if len(history.values) == 0:
        return []
    result = detection.detect(history.values, step_s=step_s)
    found = detection.events(result, analytics_settings.ANOMALY_THRESHOLD)

    def describe(event: detection.Event) -> dict:
        t = event.start
        expected = result.expected[t]
        z = (history.values[t] - expected) / max((result.upper[t] - expected) / 3.0, 1e-12)
        return {"score": round(event.peak, 6), "value": float(history.values[t]),
                "expected_low": float(result.lower[t]), "expected_high": float(result.upper[t]),
                "signals": [{"signal": series, "value": float(history.values[t]), "expected": float(expected),
                             "z": round(float(z), 2)}]}

    return _store_events(tenant=tenant, kind=AnomalyKind.SERIES, series=series,
                         timestamps=history.timestamps_s, found=found, describe=describe)


def endpoint_signals(route: str) -> list[str]:
    return [f"{kind}:{route}" for kind in ENDPOINT_SIGNALS] + [HOST_SIGNAL]


@transaction.atomic
def endpoint_detect(*, tenant, route: str, now: datetime | None = None, scored_hours: int = 24) -> list[Anomaly]:
    """Multivariate detection for one endpoint over the signals whose sources exist; the model is fitted on
    the history before the last `scored_hours` and scores those hours."""
    now = now or timezone.now()
    step_s = analytics_settings.DETECT_STEP_S
    start = now - timedelta(hours=analytics_settings.DETECT_HISTORY_HOURS)
    columns, names = [], []
    grid = np.arange(math.floor(start.timestamp() / step_s) * step_s, now.timestamp(), step_s)
    for key in endpoint_signals(route):
        if sources.kind_of(key) not in sources.registered_kinds():
            continue
        s = _regular_series(tenant=tenant, series=key, start=start, end=now, step_s=step_s)
        if len(s.values) == 0:
            continue
        idx = np.clip(np.searchsorted(s.timestamps_s, grid, side="right") - 1, 0, len(s.values) - 1)
        columns.append(np.where(grid >= s.timestamps_s[0], s.values[idx], np.nan))
        names.append(key)
    if len(columns) < 2:
        return []
    matrix = np.column_stack(columns)
    usable = ~np.any(np.isnan(matrix), axis=1)
    matrix, grid = matrix[usable], grid[usable]
    train_rows = max(0, len(grid) - int(scored_hours * 3600 / step_s))
    result = detection.multivariate(matrix, names, train_rows)
    scored = grid[train_rows:]
    found = detection.events(
        detection.Detection(score=result.score, raw=result.raw, expected=np.zeros(len(scored)),
                            lower=np.zeros(len(scored)), upper=np.zeros(len(scored))),
        analytics_settings.ANOMALY_THRESHOLD)

    def describe(event: detection.Event) -> dict:
        drivers = result.drivers[event.start]
        return {"score": round(event.peak, 6), "value": None, "expected_low": None, "expected_high": None,
                "signals": drivers}

    return _store_events(tenant=tenant, kind=AnomalyKind.ENDPOINT, series=route, timestamps=scored,
                         found=found, describe=describe)


def forecasts_refresh_all(*, tenant, now: datetime | None = None, progress=None) -> dict:
    """The scheduled refresh: every series the sources list for the tenant. A series that fails is counted,
    not fatal."""
    keys = sources.list_series(tenant=tenant)
    done, failed = 0, {}
    for i, key in enumerate(keys):
        try:
            forecast_refresh(tenant=tenant, series=key, now=now)
            done += 1
        except ApplicationError as exc:
            failed[key] = exc.message
        if progress:
            progress(int(100 * (i + 1) / len(keys)), key)
    return {"refreshed": done, "skipped": failed}


def detect_all(*, tenant, now: datetime | None = None, progress=None) -> dict:
    keys = sources.list_series(tenant=tenant)
    routes = sorted({key.split(":", 1)[1] for key in keys if sources.kind_of(key) == "endpoint_rps"})
    anomalies = 0
    work = [("series", k) for k in keys] + [("endpoint", r) for r in routes]
    for i, (kind, key) in enumerate(work):
        found = (series_detect(tenant=tenant, series=key, now=now) if kind == "series"
                 else endpoint_detect(tenant=tenant, route=key, now=now))
        anomalies += len(found)
        if progress:
            progress(int(100 * (i + 1) / len(work)), key)
    return {"series": len(keys), "endpoints": len(routes), "anomalies": anomalies}
