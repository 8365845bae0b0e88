"""Reads of the jobs app: filtered run lists, per-type statistics, the registered types."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from apps.core.job_types import registry
from apps.jobs.models import JobRun
from apps.tenancy.models import Tenant

Status = JobRun.Status
STATS_WINDOW = timedelta(hours=1)
# p50/p95 are computed from at most this many recent durations per type (bounded work per request).
DURATION_SAMPLE = 2000


def run_list(*, tenant: Tenant, filters: dict[str, Any] | None = None) -> QuerySet[JobRun]:
    filters = filters or {}
    runs = JobRun.objects.for_tenant(tenant)
    if filters.get("type"):
        runs = runs.filter(type=filters["type"])
    if filters.get("status"):
        runs = runs.filter(status=filters["status"])
    if filters.get("queued_after"):
        runs = runs.filter(queued_at__gte=filters["queued_after"])
    if filters.get("queued_before"):
        runs = runs.filter(queued_at__lt=filters["queued_before"])
    if filters.get("worker_host"):
        runs = runs.filter(worker__startswith=f"{filters['worker_host']}:")
    return runs.prefetch_related("attempt_history")


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def job_stats(*, tenant: Tenant, now: datetime | None = None) -> dict[str, Any]:
    """Per type: queued, running, succeeded and failed in the last hour, p50/p95 run time, oldest queued age."""
    now = now or timezone.now()
    since = now - STATS_WINDOW
    runs = JobRun.objects.for_tenant(tenant)
    rows = runs.values("type").annotate(
        queued=Count("pk", filter=Q(status__in=(Status.QUEUED, Status.RETRYING))),
        running=Count("pk", filter=Q(status=Status.RUNNING)),
        succeeded_1h=Count("pk", filter=Q(status=Status.SUCCEEDED, finished_at__gte=since)),
        failed_1h=Count("pk", filter=Q(status=Status.FAILED, finished_at__gte=since)),
        oldest_queued_at=Min("queued_at", filter=Q(status=Status.QUEUED)),
    )
    types: dict[str, dict[str, Any]] = {}
    for row in rows:
        oldest = row.pop("oldest_queued_at")
        name = row.pop("type")
        durations = sorted(
            (finished - started).total_seconds()
            for started, finished in runs.filter(type=name, status=Status.SUCCEEDED, finished_at__gte=since)
            .order_by("-finished_at").values_list("started_at", "finished_at")[:DURATION_SAMPLE]
            if started and finished
        )
        types[name] = {
            **row,
            "p50_run_s": _percentile(durations, 0.50),
            "p95_run_s": _percentile(durations, 0.95),
            "oldest_queued_age_s": (now - oldest).total_seconds() if oldest else None,
        }
    return {"window_s": int(STATS_WINDOW.total_seconds()), "types": types, "workers": live_workers()}


def queue_depth(*, tenant: Tenant | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Runs waiting (queued or retrying) and the age of the oldest, of one tenant or (None) of all tenants."""
    now = now or timezone.now()
    runs = JobRun.objects.all() if tenant is None else JobRun.objects.for_tenant(tenant)
    waiting = runs.filter(status__in=(Status.QUEUED, Status.RETRYING)).aggregate(depth=Count("pk"),
                                                                                  oldest=Min("queued_at"))
    oldest = waiting["oldest"]
    return {"depth": waiting["depth"], "oldest_age_s": (now - oldest).total_seconds() if oldest else None}


def live_workers() -> dict[str, int]:
    """Clusters and worker processes that reported to the broker recently (django-q2's own status)."""
    from django_q.status import Stat

    try:
        clusters = Stat.get_all()
    except Exception:
        return {"clusters": 0, "workers": 0}
    return {"clusters": len(clusters), "workers": sum(len(c.workers) for c in clusters)}


def broker_overview() -> list[dict[str, Any]]:
    """Per broker (the default queue and each ALT_CLUSTERS queue): queue depth and the clusters that report
    to it, with their workers (django-q2's own status), for the admin's live view."""
    from django.conf import settings
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    names = [Conf.CLUSTER_NAME, *getattr(settings, "Q_CLUSTER", {}).get("ALT_CLUSTERS", {})]
    overview = []
    for name in names:
        broker = get_broker(name)
        try:
            depth, clusters = broker.queue_size(), Stat.get_all(broker=broker)
        except Exception as exc:
            overview.append({"name": name, "broker": broker.__class__.__name__, "error": str(exc),
                             "queue_depth": None, "clusters": []})
            continue
        overview.append({
            "name": name, "broker": broker.__class__.__name__, "error": "", "queue_depth": depth,
            "clusters": [{"id": str(c.cluster_id), "host": c.host, "status": c.status, "pid": c.pid,
                          "workers": len(c.workers), "task_q_size": c.task_q_size, "done_q_size": c.done_q_size}
                         for c in clusters],
        })
    return overview


def job_types() -> list[dict[str, Any]]:
    return [
        {
            "name": job.name,
            "description": job.description,
            "timeout_s": job.timeout_s,
            "max_attempts": job.max_attempts,
            "queue": job.queue,
            "submit_role": job.submit_role,
            "schedule": job.cron or (f"every {job.interval_min} min" if job.interval_min else ""),
            "params_schema": params_schema(job.params),
        }
        for job in sorted(registry.values(), key=lambda j: j.name)
    ]


def params_schema(serializer_class) -> dict[str, Any]:
    """A JSON Schema of a parameter serializer (DRF's own OpenAPI mapping of serializer fields)."""
    if serializer_class is None:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    from rest_framework.schemas.openapi import AutoSchema

    schema = AutoSchema().map_serializer(serializer_class())
    schema["additionalProperties"] = False
    return schema
