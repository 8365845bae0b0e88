"""Reads of monitoring, pinned for alerting, analytics and optimization: endpoint summaries and series, host
samples, job queue, threshold states and health. Every figure comes from merged histograms and sums (rollup
rows plus the store's live minutes), never from raw samples.

Batch reads cost a fixed number of queries per tenant, however many routes it has: `endpoint_summaries`
(every route over a window) and `tenant_series` (every route's series) read the tenant's rollup rows in one
query and its live minutes in one store round trip; host samples and the job queue are one query each.
Time comes in as `now` (epoch seconds or datetime; default: core's SYSTEM_CLOCK).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from apps.core import histogram
from apps.core.clock import SYSTEM_CLOCK
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.backends.base import MetricsStore
from apps.monitoring.models import Endpoint, EndpointRollup, SystemSample, Thresholds
from apps.tenancy.models import Tenant

SERIES_METRICS = ("rps", "p50_ms", "p95_ms", "p99_ms", "error_rate")
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
STEPS = {"1m": 60, "1h": 3600}
SUMMARY_SORTS = ("route", "method", "count", "rps", "p50_ms", "p95_ms", "p99_ms", "error_rate", "db_time_share",
                 "queries_per_request")
# Response time and error rate of the threshold states are judged over this trailing window.
STATE_WINDOW_S = 300


def _tenant_id(tenant: Tenant | int | None) -> int | None:
    return tenant.pk if isinstance(tenant, Tenant) else tenant


def _store(store: MetricsStore | None) -> MetricsStore:
    if store is not None:
        return store
    from apps.monitoring.recorder import sink

    return sink.store


def _timestamp(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _now(now: datetime | float | None) -> float:
    return SYSTEM_CLOCK.time() if now is None else _timestamp(now)


def live_figures(store: MetricsStore | None, **window) -> dict:
    """The store's live minutes, through the recorder's StoreGuard: with the store down, none (reads fall
    back to the rolled-up rows) and health says `monitoring:store` is degraded."""
    from apps.monitoring import recorder

    chosen = _store(store)
    return recorder.sink.read(lambda: chosen.live(**window), dict)


def window_figures(*, tenant, start: float, end: float, store: MetricsStore | None = None,
                   route: str | None = None, method: str | None = None) -> Iterable[tuple[str, str, float, MinuteAgg]]:
    """(route, method, start of the minute or hour, figures) of the tenant in [start, end): rows and live minutes."""
    from apps.monitoring.services import agg_of_row

    tenant_id = _tenant_id(tenant)
    rows = EndpointRollup.objects.select_related("endpoint").filter(start__lt=datetime.fromtimestamp(end, tz=UTC))
    rows = rows.filter(endpoint__tenant__isnull=True) if tenant_id is None else rows.filter(endpoint__tenant_id=tenant_id)
    if route is not None:
        rows = rows.filter(endpoint__route=route, endpoint__method=method)
    hour_start = datetime.fromtimestamp(start // 3600 * 3600, tz=UTC)
    minute_start = datetime.fromtimestamp(start // 60 * 60, tz=UTC)
    rows = rows.filter(start__gte=hour_start) if end - start > 2 * 86400 else rows.filter(start__gte=minute_start)
    for row in rows.iterator(chunk_size=2000):
        if row.resolution_s == EndpointRollup.Resolution.MINUTE and row.start < minute_start:
            continue
        yield row.endpoint.route, row.endpoint.method, row.start.timestamp(), agg_of_row(row)
    # Minutes holding an instant of [start, end): the last is the one just before `end`.
    live = live_figures(store, tenant_id=tenant_id, start_minute=int(start // 60), end_minute=math.ceil(end / 60) - 1)
    for (_tid, live_route, live_method, minute), agg in live.items():
        if route is None or (live_route == route and live_method == method):
            yield live_route, live_method, minute * 60.0, agg


def _summary(route: str, method: str, agg: MinuteAgg, covered_s: float) -> dict[str, Any]:
    count = agg.count
    p50, p95, p99 = histogram.quantiles_ms(agg.hist, (0.50, 0.95, 0.99))
    return {
        "route": route,
        "method": method,
        "count": count,
        "rps": count / covered_s if covered_s > 0 else 0.0,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "error_rate": agg.errors / count if count else 0.0,
        "db_time_share": agg.db_ms_sum / agg.duration_ms_sum if agg.duration_ms_sum else 0.0,
        "queries_per_request": agg.queries_sum / count if count else 0.0,
    }


def window_bounds(*, window_s: int, now: float) -> tuple[float, float]:
    """The window is `window_s // 60` whole minutes ending with the current one (up to now)."""
    start = (now // 60 + 1) * 60 - window_s
    return start, now


def endpoint_summaries(*, tenant: Tenant | int | None, window_s: int, now: float | datetime | None = None,
                       store: MetricsStore | None = None, include_idle: bool = False) -> list[dict]:
    """Per (route, method) over the window: route, method, count, rps, p50_ms, p95_ms, p99_ms, error_rate
    (0–1), db_time_share, queries_per_request, and `id` (the endpoint, for its series; None before the first
    rollup). `rps` divides by the seconds the window actually covers. tenant None: platform traffic.
    `include_idle` adds the tenant's known endpoints without traffic in the window (count 0)."""
    now = _now(now)
    start, end = window_bounds(window_s=window_s, now=now)
    merged: dict[tuple[str, str], MinuteAgg] = {}
    for route, method, _at, agg in window_figures(tenant=tenant, start=start, end=end + 1e-6, store=store):
        merged.setdefault((route, method), MinuteAgg()).merge(agg)
    tenant_id = _tenant_id(tenant)
    endpoints = Endpoint.objects.filter(tenant__isnull=True) if tenant_id is None else Endpoint.objects.filter(tenant_id=tenant_id)
    ids = {(e.route, e.method): e.pk for e in endpoints.only("pk", "route", "method")}
    summaries = []
    for (route, method), agg in merged.items():
        item = _summary(route, method, agg, end - start)
        item["id"] = ids.get((route, method))
        summaries.append(item)
    if include_idle:
        for (route, method), pk in ids.items():
            if (route, method) not in merged:
                summaries.append({**_summary(route, method, MinuteAgg(), end - start), "id": pk})
    summaries.sort(key=lambda s: (-s["count"], s["route"], s["method"]))
    return summaries


def _point(metric: str, agg: MinuteAgg | None, step_s: int) -> float | None:
    if metric == "rps":
        return (agg.count if agg else 0) / step_s
    if agg is None or not agg.count:
        return None
    if metric == "error_rate":
        return agg.errors / agg.count
    return histogram.quantile_ms(agg.hist, {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}[metric])


def _series(steps: dict[float, MinuteAgg], metrics: Iterable[str], start_s: float, end_s: float,
            step_s: int) -> dict[str, list[tuple[datetime, float]]]:
    series: dict[str, list[tuple[datetime, float]]] = {metric: [] for metric in metrics}
    at = start_s
    while at < end_s:
        agg = steps.get(at)
        when = datetime.fromtimestamp(at, tz=UTC)
        for metric, points in series.items():
            value = _point(metric, agg, step_s)
            if value is not None:
                points.append((when, value))
        at += step_s
    return series


def _check_metrics(metrics: Iterable[str]) -> list[str]:
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in SERIES_METRICS]
    if unknown:
        raise ValueError(f"metric must be one of {', '.join(SERIES_METRICS)}")
    return metrics


def endpoint_series(*, tenant: Tenant | int | None, route: str, method: str, metric: str,
                    start: datetime | float, end: datetime | float, step_s: int,
                    store: MetricsStore | None = None) -> list[tuple[datetime, float]]:
    """One point per step in [start, end) that has traffic (rps: every step, 0.0 without traffic)."""
    _check_metrics([metric])
    start_s, end_s = _timestamp(start) // step_s * step_s, _timestamp(end)
    steps: dict[float, MinuteAgg] = {}
    for _route, _method, at, agg in window_figures(tenant=tenant, start=start_s, end=end_s, store=store,
                                                   route=route, method=method):
        steps.setdefault(at // step_s * step_s, MinuteAgg()).merge(agg)
    return _series(steps, [metric], start_s, end_s, step_s)[metric]


def tenant_series(*, tenant: Tenant | int | None, start: datetime | float, end: datetime | float, step_s: int,
                  metrics: Iterable[str] = SERIES_METRICS,
                  store: MetricsStore | None = None) -> dict[tuple[str, str], dict[str, list[tuple[datetime, float]]]]:
    """Every (route, method) of the tenant with traffic in [start, end): {metric: [(step start, value)]}, the
    same points as `endpoint_series` gives per route, from one rollup query and one store read in all."""
    metrics = _check_metrics(metrics)
    start_s, end_s = _timestamp(start) // step_s * step_s, _timestamp(end)
    per_route: dict[tuple[str, str], dict[float, MinuteAgg]] = {}
    for route, method, at, agg in window_figures(tenant=tenant, start=start_s, end=end_s, store=store):
        per_route.setdefault((route, method), {}).setdefault(at // step_s * step_s, MinuteAgg()).merge(agg)
    return {key: _series(steps, metrics, start_s, end_s, step_s) for key, steps in per_route.items()}


def tenant_figures(*, tenant, window_s: int = STATE_WINDOW_S, now: float | None = None,
                   store: MetricsStore | None = None) -> MinuteAgg:
    """Everything of the tenant over the trailing window, merged (all routes): count, errors, histogram."""
    now = _now(now)
    start, end = window_bounds(window_s=window_s, now=now)
    return MinuteAgg.merged(agg for *_rest, agg in window_figures(tenant=tenant, start=start, end=end + 1e-6,
                                                                  store=store))


def _sample_dict(sample: SystemSample) -> dict[str, Any]:
    return {"host": sample.host, "taken_at": sample.taken_at, "cpu_percent": sample.cpu_percent,
            "memory_percent": sample.memory_percent, "disk_percent": sample.disk_percent, **sample.data}


def latest_system_sample(*, host: str | None = None) -> dict | None:
    """The newest sample (of `host`, or of any host): cpu_percent, memory_percent, disk_percent, host,
    taken_at, and the rest of what the sampler took (load, swap, disk_io, net_io, processes, postgres,
    redis, jobs)."""
    samples = SystemSample.objects.all()
    if host is not None:
        samples = samples.filter(host=host)
    sample = samples.order_by("-taken_at").first()
    return _sample_dict(sample) if sample else None


def system_samples(*, host: str | None = None, limit: int = 100) -> list[dict]:
    samples = SystemSample.objects.all()
    if host is not None:
        samples = samples.filter(host=host)
    return [_sample_dict(s) for s in samples.order_by("-taken_at")[:limit]]


# A host whose newest sample is older than this is not reported as current (it stopped, or was renamed).
HOST_STALE_S = 600


def latest_host_samples(*, now: datetime | float | None = None, max_age_s: float = HOST_STALE_S) -> list[dict]:
    """The newest sample of every host that sampled within `max_age_s` (one query), busiest CPU first."""
    since = datetime.fromtimestamp(_now(now) - max_age_s, tz=UTC)
    newest: dict[str, SystemSample] = {}
    for sample in SystemSample.objects.filter(taken_at__gte=since).order_by("-taken_at"):
        newest.setdefault(sample.host, sample)
    return sorted((_sample_dict(s) for s in newest.values()), key=lambda s: (-s["cpu_percent"], s["host"]))


def host_samples(*, start: datetime | float, end: datetime | float, host: str | None = None) -> list[dict]:
    """Every sample taken in [start, end) (of `host`, or of every host), oldest first (one query)."""
    samples = SystemSample.objects.filter(taken_at__gte=datetime.fromtimestamp(_timestamp(start), tz=UTC),
                                          taken_at__lt=datetime.fromtimestamp(_timestamp(end), tz=UTC))
    if host is not None:
        samples = samples.filter(host=host)
    return [_sample_dict(s) for s in samples.order_by("taken_at", "host")]


def job_queue(*, tenant: Tenant | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    """Runs waiting (queued or retrying): `depth` and `oldest_age_s`, of the tenant or (None) of all tenants."""
    from apps.jobs.selectors import queue_depth

    return queue_depth(tenant=tenant, now=datetime.fromtimestamp(_now(now), tz=UTC))


def _state(value: float | None, warning: float, critical: float) -> str:
    if value is None or value < warning:
        return "ok"
    return "critical" if value >= critical else "warning"


def threshold_states(*, tenant: Tenant, now: float | None = None, store: MetricsStore | None = None) -> dict:
    """Each dimension's state (ok / warning / critical) with the figure behind it and the levels.

    cpu and memory: the newest system sample (worst host); response_time: the tenant's p95 over the last
    5 minutes; error_rate: its share of 5xx over the same minutes, in percent. No data: ok, value None.
    """
    from apps.monitoring.services import thresholds_get

    thresholds: Thresholds = thresholds_get(tenant=tenant)
    hosts = latest_host_samples(now=now)
    figures = tenant_figures(tenant=tenant, now=now, store=store)
    values = {
        "cpu": max((s["cpu_percent"] for s in hosts), default=None),
        "memory": max((s["memory_percent"] for s in hosts), default=None),
        "response_time": histogram.quantile_ms(figures.hist, 0.95),
        "error_rate": (100 * figures.errors / figures.count) if figures.count else None,
    }
    units = {"cpu": "%", "memory": "%", "response_time": "ms", "error_rate": "%"}
    states = {}
    for dimension in Thresholds.DIMENSIONS:
        warning, critical = thresholds.levels(dimension)
        value = values[dimension]
        states[dimension] = {"state": _state(value, warning, critical), "value": value, "unit": units[dimension],
                             "warning": warning, "critical": critical}
    return states
