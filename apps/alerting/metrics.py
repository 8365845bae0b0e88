"""The metric kinds alerting registers in the core registry (apps.core.metric_kinds): monitoring's endpoint
figures and host samples, the tenant's job queue, and the hot-path apps' breaker, rate-limit and cache
figures. Each reader answers every label set of one tenant in one call, from merged data (rollups, live
minutes, per-minute stat rows), never from raw samples, so a cycle costs one read per kind and window."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from django.db.models import Count, Min, Sum

from apps.core.metric_kinds import MetricKind, Reading, register

ENDPOINT_LABELS = ("route", "method")


@lru_cache(maxsize=64)
def _endpoint_summaries(tenant_id: int, window_s: int, now: datetime) -> tuple[dict, ...]:
    """The four endpoint kinds of one cycle share one read (same tenant, window and instant).

    Monitoring's windows are whole minutes ending with the current one, so a 60 s window read a few seconds
    into a minute would hold only those seconds (often nothing yet flushed), and a pending alert would flap
    back to inactive at every minute boundary. The window's minutes are therefore the full ones before the
    current minute plus the current one: `window_s` to `window_s + 60` seconds of data."""
    from apps.monitoring.selectors import endpoint_summaries

    return tuple(endpoint_summaries(tenant=tenant_id, window_s=window_s + 60, now=now))


def _endpoint_reader(field: str):
    def read(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
        return [({"route": s["route"], "method": s["method"]}, float(s[field]))
                for s in _endpoint_summaries(tenant_id, window_s, now)
                if s["count"] and s[field] is not None]

    return read


def _host_reader(field: str):
    def read(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
        from apps.monitoring.models import SystemSample

        # The newest sample of each host within the window (hosts are the platform's, shared by tenants).
        rows = (SystemSample.objects.filter(taken_at__gt=now - timedelta(seconds=window_s), taken_at__lte=now)
                .order_by("host", "-taken_at").distinct("host").values_list("host", field))
        return [({"host": host}, float(value)) for host, value in rows]

    return read


def _queue_rows(tenant_id: int):
    from apps.jobs.models import JobRun

    return (JobRun.objects.filter(tenant_id=tenant_id, status__in=(JobRun.Status.QUEUED, JobRun.Status.RETRYING))
            .values("type").annotate(depth=Count("pk"), oldest=Min("queued_at")))


def read_queue_depth(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
    return [({"type": row["type"]}, float(row["depth"])) for row in _queue_rows(tenant_id)]


def read_queue_age(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
    return [({"type": row["type"]}, max(0.0, (now - row["oldest"]).total_seconds())) for row in _queue_rows(tenant_id)]


def read_breaker_open(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
    """1 for a breaker that is open (its last transition, or forced by an operator), else 0."""
    from apps.resilience.models import BreakerPolicy, ForcedState
    from apps.resilience.selectors import last_transition_annotations

    rows = (BreakerPolicy.objects.filter(tenant_id=tenant_id).annotate(**last_transition_annotations())
            .values_list("name", "forced_state", "last_transition_to"))
    return [({"dependency": name}, 1.0 if forced == ForcedState.FORCED_OPEN or
             (forced == ForcedState.NONE and last == "open") else 0.0) for name, forced, last in rows]


def _minute_start(now: datetime, window_s: int) -> datetime:
    return now.replace(second=0, microsecond=0) - timedelta(seconds=max(window_s - 60, 0))


def read_ratelimit_denials(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
    from apps.ratelimit.models import RateLimitStat

    rows = (RateLimitStat.objects.filter(tenant_id=tenant_id, minute__gte=_minute_start(now, window_s))
            .values("policy__name").annotate(denied=Sum("denied")))
    return [({"policy": row["policy__name"]}, float(row["denied"] or 0)) for row in rows]


def read_cache_hit_ratio(tenant_id: int, window_s: int, now: datetime) -> list[Reading]:
    from apps.caching.models import CacheStatMinute

    rows = (CacheStatMinute.objects.filter(tenant_id=tenant_id, minute__gte=_minute_start(now, window_s))
            .values("policy__name").annotate(hits=Sum("hits"), stale=Sum("stale"), misses=Sum("misses")))
    readings = []
    for row in rows:
        served = (row["hits"] or 0) + (row["stale"] or 0)
        total = served + (row["misses"] or 0)
        if total:
            readings.append(({"policy": row["policy__name"]}, served / total))
    return readings


KINDS = [
    MetricKind("endpoint_error_rate", "fraction", ENDPOINT_LABELS, "Share of 5xx responses of a route (0–1)",
               _endpoint_reader("error_rate")),
    MetricKind("endpoint_p95_ms", "ms", ENDPOINT_LABELS, "95th percentile response time of a route",
               _endpoint_reader("p95_ms")),
    MetricKind("endpoint_p99_ms", "ms", ENDPOINT_LABELS, "99th percentile response time of a route",
               _endpoint_reader("p99_ms")),
    MetricKind("endpoint_rps", "per_s", ENDPOINT_LABELS, "Requests per second of a route", _endpoint_reader("rps")),
    MetricKind("cpu_percent", "percent", ("host",), "CPU use of a host (newest sample)", _host_reader("cpu_percent")),
    MetricKind("memory_percent", "percent", ("host",), "Memory use of a host (newest sample)",
               _host_reader("memory_percent")),
    MetricKind("disk_percent", "percent", ("host",), "Disk use of a host (newest sample)",
               _host_reader("disk_percent")),
    MetricKind("queue_depth", "count", ("type",), "Jobs of the tenant waiting to run, per job type",
               read_queue_depth),
    MetricKind("queue_age_s", "seconds", ("type",), "Age of the tenant's oldest waiting job, per job type",
               read_queue_age),
    MetricKind("breaker_open", "count", ("dependency",), "1 while a circuit breaker is open, else 0",
               read_breaker_open),
    MetricKind("ratelimit_denials", "count", ("policy",), "Requests a rate-limit policy denied in the window",
               read_ratelimit_denials),
    MetricKind("cache_hit_ratio", "fraction", ("policy",), "Share of lookups a cache policy served (0–1)",
               read_cache_hit_ratio),
]


def register_all() -> None:
    for kind in KINDS:
        register(kind)
