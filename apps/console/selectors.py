"""Reads of the console: everything the dashboard shows of one tenant, as JSON-ready sections.

Each section is a dict of items (key -> value); the stream sends an item again only when it changed, and a
removed item as None. `fast_sections` are cheap and read every PULSE_INTERVAL_S; `metric_sections` read
rollups, samples and stats every METRICS_INTERVAL_S.
"""
from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.analytics.selectors import anomaly_list, forecast_list
from apps.audit.models import AuditEvent
from apps.caching.models import CacheStatMinute
from apps.console import sources
from apps.console.conf import console_settings
from apps.core import histogram
from apps.jobs.models import JobRun
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.models import SystemSample
from apps.monitoring.selectors import endpoint_summaries, threshold_states, window_figures
from apps.ratelimit.models import RateLimitStat
from apps.resilience.models import BreakerPolicy
from apps.resilience.selectors import breaker_live
from apps.tenancy.models import Tenant

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
BREAKER_STATE_LEVEL = {"open": CRITICAL, "forced_open": CRITICAL, "half_open": WARNING}
ACTIVE_JOB_STATUSES = (JobRun.Status.QUEUED, JobRun.Status.RUNNING, JobRun.Status.RETRYING)
# The rate-limit and cache figures of a policy page cover this many recent minutes.
POLICY_MINUTES = 10
FORECAST_SERIES = ("cpu_percent", "memory_percent")


def worst(states) -> str:
    return max(states, key=lambda s: _RANK[s], default=OK)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- fast sections: breakers and jobs ---------------------------------------------------------------------

def breaker_board(*, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Every breaker of the tenant (up to MAX_BREAKERS, by name) with its live state and failure rate."""
    board = {}
    for policy in BreakerPolicy.objects.for_tenant(tenant).order_by("name")[: console_settings.MAX_BREAKERS]:
        live = breaker_live(policy=policy)
        board[policy.name] = {
            "id": policy.pk, "name": policy.name, "state": live["state"], "forced_state": policy.forced_state,
            "calls": live["calls"], "failure_rate_pct": _round(live["failure_rate_pct"]),
            "open_until": live["open_until"], "level": BREAKER_STATE_LEVEL.get(live["state"], OK),
        }
    return board


def job_queue(*, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Runs still queued or running (up to 100), and the most recent others, by id."""
    runs = JobRun.objects.for_tenant(tenant).only("pk", "type", "status", "progress", "progress_message",
                                                  "queued_at", "finished_at")
    active = list(runs.filter(status__in=ACTIVE_JOB_STATUSES).order_by("-pk")[:100])
    recent = list(runs.exclude(status__in=ACTIVE_JOB_STATUSES).order_by("-pk")[: console_settings.RECENT_JOBS])
    return {
        str(run.pk): {"id": run.pk, "type": run.type, "status": run.status, "progress": run.progress,
                      "message": run.progress_message, "queued_at": _iso(run.queued_at)}
        for run in active + recent
    }


def fast_sections(*, tenant: Tenant) -> dict[str, dict[str, Any]]:
    breakers = breaker_board(tenant=tenant)
    jobs = job_queue(tenant=tenant)
    failed = any(job["status"] == JobRun.Status.FAILED for job in jobs.values())
    return {
        "breakers": breakers,
        "jobs": jobs,
        "cards": {
            "breakers": worst(b["level"] for b in breakers.values()),
            "jobs": WARNING if failed else OK,
        },
    }


# --- metric sections --------------------------------------------------------------------------------------

def tenant_minutes(*, tenant: Tenant, minutes: int, now: float | None = None) -> list[list]:
    """Per minute of the last `minutes` (all endpoints merged): [epoch s, rps, p50, p95, p99 ms, errors %]."""
    now = time.time() if now is None else now
    first = (int(now) // 60 - minutes + 1) * 60
    steps: dict[int, MinuteAgg] = {}
    for _route, _method, at, agg in window_figures(tenant=tenant, start=first, end=now + 1e-6):
        steps.setdefault(int(at) // 60 * 60, MinuteAgg()).merge(agg)
    rows = []
    for at in range(first, int(now) // 60 * 60 + 60, 60):
        agg = steps.get(at)
        count = agg.count if agg else 0
        covered = min(60.0, now - at) if at + 60 > now else 60.0
        p50, p95, p99 = histogram.quantiles_ms(agg.hist, (0.5, 0.95, 0.99)) if count else (None, None, None)
        rows.append([at, _round(count / covered if covered > 0 else 0.0, 3), _round(p50), _round(p95),
                     _round(p99), _round(100.0 * agg.errors / count if count else None)])
    return rows


def top_endpoints(*, tenant: Tenant, now: float | None = None) -> list[dict[str, Any]]:
    """The busiest endpoints of the last minute: rps, p95 and error rate, each linked to its page."""
    rows = endpoint_summaries(tenant=tenant, window_s=60, now=now)[: console_settings.TOP_ENDPOINTS]
    return [
        {"route": row["route"], "method": row["method"], "rps": _round(row["rps"], 3), "p95_ms": _round(row["p95_ms"]),
         "error_rate_pct": _round(100.0 * row["error_rate"]),
         "url": reverse("admin:bulwark_monitoring_endpoint_change", args=[row["id"]]) if row["id"] else None}
        for row in rows
    ]


def system_series(*, tenant: Tenant, hours: int = 6) -> dict[str, Any]:
    """CPU and memory of the busiest host over the last hours, and the tenant's stored forecasts of both
    (analytics' 80 % band) for the hours ahead: [[epoch s, value]], [[epoch s, forecast, lower, upper]]."""
    since = timezone.now() - timedelta(hours=hours)
    per_minute: dict[int, list[float]] = {}
    samples = SystemSample.objects.filter(taken_at__gte=since).order_by("taken_at")
    for taken_at, cpu, memory in samples.values_list("taken_at", "cpu_percent", "memory_percent")[:5000]:
        at = int(taken_at.timestamp()) // 60 * 60
        worst_cpu, worst_memory = per_minute.get(at, (0.0, 0.0))
        per_minute[at] = [max(worst_cpu, cpu), max(worst_memory, memory)]
    forecasts = {}
    now = timezone.now()
    for forecast in forecast_list(tenant=tenant).filter(series__in=FORECAST_SERIES).order_by("series", "-horizon"):
        if forecast.series in forecasts:
            continue
        points = []
        for when, value, low, high in forecast.points:
            at = datetime.fromisoformat(when)
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            if now - timedelta(hours=1) <= at <= now + timedelta(hours=hours):
                points.append([int(at.timestamp()), _round(value), _round(low), _round(high)])
        forecasts[forecast.series] = points
    return {"samples": [[at, _round(c), _round(m)] for at, (c, m) in sorted(per_minute.items())],
            "forecast_cpu": forecasts.get("cpu_percent", []),
            "forecast_memory": forecasts.get("memory_percent", [])}


def policy_figures(*, tenant: Tenant, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per rate-limit policy: allowed/denied per minute of the last POLICY_MINUTES; per cache policy: its hit
    ratio over the same minutes. Keys `ratelimit:<id>` and `caching:<id>`."""
    since = (now or timezone.now()).replace(second=0, microsecond=0) - timedelta(minutes=POLICY_MINUTES - 1)
    figures: dict[str, dict[str, Any]] = {}
    rows = RateLimitStat.objects.for_tenant(tenant).filter(minute__gte=since).order_by("minute")
    for policy_id, minute, allowed, denied in rows.values_list("policy_id", "minute", "allowed", "denied"):
        item = figures.setdefault(f"ratelimit:{policy_id}", {"minutes": []})
        item["minutes"].append([int(minute.timestamp()), allowed, denied])
    cache_rows = (CacheStatMinute.objects.for_tenant(tenant).filter(minute__gte=since).values("policy_id")
                  .annotate(hits=Sum("hits"), stale=Sum("stale"), misses=Sum("misses")))
    for row in cache_rows:
        served = row["hits"] + row["stale"]
        total = served + row["misses"]
        figures[f"caching:{row['policy_id']}"] = {"hit_ratio": _round(served / total, 4) if total else None,
                                                  "lookups": total}
    return figures


def recent_audit(*, tenant: Tenant) -> list[dict[str, Any]]:
    events = AuditEvent.objects.for_tenant(tenant).order_by("-id")[: console_settings.RECENT_AUDIT_EVENTS]
    return [{"id": e.pk, "at": _iso(e.timestamp), "actor": e.actor_display or e.actor_kind, "action": e.action,
             "object": e.object_repr, "url": reverse("admin:bulwark_audit_auditevent_change", args=[e.pk])}
            for e in events]


def open_anomalies(*, tenant: Tenant) -> list[dict[str, Any]]:
    return [{"id": a.pk, "series": a.series, "score": _round(a.score, 3), "since": _iso(a.started_at)}
            for a in anomaly_list(tenant=tenant, open_only=True)[:5]]


def metric_sections(*, tenant: Tenant, now: float | None = None) -> dict[str, dict[str, Any]]:
    now = time.time() if now is None else now
    health = threshold_states(tenant=tenant, now=now)
    alerts = sources.firing_alerts(tenant)
    anomalies = open_anomalies(tenant=tenant)
    alert_state = worst(CRITICAL if a.get("severity") == CRITICAL else WARNING for a in alerts)
    endpoint_state = worst(health[d]["state"] for d in ("response_time", "error_rate"))
    return {
        "health": {name: {**figures, "value": _round(figures["value"])} for name, figures in health.items()},
        "chart": {"minutes": tenant_minutes(tenant=tenant, minutes=console_settings.CHART_MINUTES, now=now),
                  "system": system_series(tenant=tenant)},
        "endpoints": {"top": top_endpoints(tenant=tenant, now=now)},
        "policies": policy_figures(tenant=tenant),
        "audit": {"recent": recent_audit(tenant=tenant)},
        "alerts": {"firing": alerts},
        "anomalies": {"open": anomalies},
        "cards": {**{name: figures["state"] for name, figures in health.items()},
                  # The chart cards take the state of what they draw.
                  "latency": health["response_time"]["state"], "traffic": health["error_rate"]["state"],
                  "system": worst(health[d]["state"] for d in ("cpu", "memory")),
                  "endpoints": endpoint_state, "alerts": alert_state,
                  "anomalies": WARNING if anomalies else OK},
    }

