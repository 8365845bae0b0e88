"""Monitoring's series as analytics sources: endpoint rps / p95 / p99 / error rate per route, the hosts' CPU,
memory and disk, and the jobs queue depth (registered by `AnalyticsConfig.ready`).

Endpoint keys are `<kind>:<route>` for GET, or `<kind>:<METHOD> <route>` for any other method (the name the
listers give and `services.endpoint_detect` reuses for the endpoint's other signals):
`endpoint_p95_ms:api/v1/orders/<int:pk>`, `endpoint_error_rate:POST api/v1/orders`.

Host series are platform data (system samples carry no tenant): per step, the mean of each host's samples,
then the worst host, as monitoring's threshold states judge them. An rps series starts at the route's first
traffic in the window (monitoring's zeros before it are dropped). Critical thresholds come from the tenant's
monitoring thresholds (response time, error rate, CPU, memory); disk uses monitoring's health level (95 %).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apps.analytics import sources
from apps.analytics.conf import analytics_settings
from apps.core.errors import ApplicationError

DEFAULT_METHOD = "GET"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
# kind -> monitoring's endpoint_series metric
ENDPOINT_KINDS = {"endpoint_rps": "rps", "endpoint_p95_ms": "p95_ms", "endpoint_p99_ms": "p99_ms",
                  "endpoint_error_rate": "error_rate"}
# kind -> how a sample gives the figure
HOST_KINDS = ("cpu_percent", "memory_percent", "disk_percent")
QUEUE_KIND = "jobs_queue_depth"
# monitoring.health judges the disk critical from 95 %; Thresholds has no disk level.
DISK_CRITICAL_PCT = 95.0


def endpoint_name(route: str, method: str) -> str:
    return route if method == DEFAULT_METHOD else f"{method} {route}"


def parse_endpoint(series: str) -> tuple[str, str]:
    """(route, method) of an endpoint key; a missing route is a 400 on `series`."""
    name = series.split(":", 1)[1] if ":" in series else ""
    method, _, rest = name.partition(" ")
    route, method = (rest, method) if method in METHODS and rest else (name, DEFAULT_METHOD)
    if not route:
        message = "Name the route: `<kind>:<route>` or `<kind>:<METHOD> <route>`."
        raise ApplicationError(message, extra={"errors": {"series": [message]}})
    return route, method


def _history_start() -> datetime:
    from django.utils import timezone

    days = max(analytics_settings.FORECAST_HISTORY_DAYS, analytics_settings.DETECT_HISTORY_HOURS / 24)
    return timezone.now() - timedelta(days=days)


# --- endpoints ------------------------------------------------------------------------------------------------

def _read_endpoint(*, tenant, series: str, start: datetime, end: datetime, step_s: int):
    from apps.monitoring.selectors import endpoint_series

    route, method = parse_endpoint(series)
    metric = ENDPOINT_KINDS[sources.kind_of(series)]
    points = endpoint_series(tenant=tenant, route=route, method=method, metric=metric, start=start, end=end,
                             step_s=step_s)
    if metric == "rps":
        # monitoring gives 0.0 for every step without traffic; the steps before the first request are not
        # history (the route did not exist yet), so the series starts at its first traffic.
        first = next((i for i, (_, value) in enumerate(points) if value > 0), len(points))
        points = points[first:]
    return points


def _endpoint_names(tenant) -> list[str]:
    """The tenant's endpoints with rolled-up traffic inside the history the jobs read."""
    from apps.monitoring.models import Endpoint

    endpoints = (Endpoint.objects.for_tenant(tenant).filter(rollups__start__gte=_history_start())
                 .values_list("route", "method").distinct())
    return sorted(endpoint_name(route, method) for route, method in endpoints)


def _endpoint_lister(kind: str):
    def lister(*, tenant) -> list[str]:
        return [f"{kind}:{name}" for name in _endpoint_names(tenant)]
    return lister


def _thresholds(tenant):
    from apps.monitoring.services import thresholds_get

    return thresholds_get(tenant=tenant)


def _latency_critical(*, tenant, series: str) -> float:
    return _thresholds(tenant).response_time_critical_ms


def _error_rate_critical(*, tenant, series: str) -> float:
    return _thresholds(tenant).error_rate_critical_pct / 100.0   # the series is a share (0-1)


# --- system samples -------------------------------------------------------------------------------------------

def _read_samples(*, series: str, start: datetime, end: datetime, step_s: int):
    from apps.monitoring.models import SystemSample

    kind = sources.kind_of(series)
    field = kind if kind in HOST_KINDS else None
    samples = SystemSample.objects.filter(taken_at__gte=start, taken_at__lt=end).order_by()
    # Bucketed here rather than in SQL, so the embedded SQLite default reads the same series as PostgreSQL;
    # a window holds one sample per host every SAMPLE_EVERY_S, a bounded number of rows.
    if field is not None:
        per_host_bucket: dict[tuple[str, int], list[float]] = {}
        for host, taken_at, value in samples.values_list("host", "taken_at", field).iterator():
            if isinstance(value, int | float):
                per_host_bucket.setdefault((host, int(taken_at.timestamp() // step_s)), []).append(float(value))
        per_host = ((bucket, sum(values) / len(values)) for (_, bucket), values in per_host_bucket.items())
    else:   # the jobs queue depth inside each sample's `data`
        sums: dict[int, list[float]] = {}
        for taken_at, depth in samples.values_list("taken_at", "data__jobs__queue_depth").iterator():
            if isinstance(depth, int | float):
                sums.setdefault(int(taken_at.timestamp() // step_s), []).append(float(depth))
        per_host = ((b, max(v)) for b, v in sums.items())
    worst: dict[float, float] = {}
    for row_bucket, value in per_host:
        if value is not None:
            worst[row_bucket] = max(worst.get(row_bucket, value), value)
    return [(datetime.fromtimestamp(float(b) * step_s, tz=UTC), float(v)) for b, v in sorted(worst.items())]


def _read_host(*, tenant, series: str, start: datetime, end: datetime, step_s: int):
    return _read_samples(series=series, start=start, end=end, step_s=step_s)


def _host_lister(kind: str):
    def lister(*, tenant) -> list[str]:
        from apps.monitoring.models import SystemSample

        samples = SystemSample.objects.filter(taken_at__gte=_history_start())
        if kind == QUEUE_KIND:
            samples = samples.filter(data__jobs__queue_depth__isnull=False)
        return [kind] if samples.exists() else []
    return lister


def _cpu_critical(*, tenant, series: str) -> float:
    return _thresholds(tenant).cpu_critical_pct


def _memory_critical(*, tenant, series: str) -> float:
    return _thresholds(tenant).memory_critical_pct


def register() -> None:
    critical = {"endpoint_rps": None, "endpoint_p95_ms": _latency_critical, "endpoint_p99_ms": _latency_critical,
                "endpoint_error_rate": _error_rate_critical}
    for kind in ENDPOINT_KINDS:
        sources.register_series_source(kind, _read_endpoint, lister=_endpoint_lister(kind), critical=critical[kind])
    host_critical = {"cpu_percent": _cpu_critical, "memory_percent": _memory_critical,
                     "disk_percent": DISK_CRITICAL_PCT}
    for kind in HOST_KINDS:
        sources.register_series_source(kind, _read_host, lister=_host_lister(kind), critical=host_critical[kind])
    sources.register_series_source(QUEUE_KIND, _read_host, lister=_host_lister(QUEUE_KIND))
