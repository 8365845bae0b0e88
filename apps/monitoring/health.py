"""The full health report: every check with its state (ok / warning / critical) and figure; overall = worst.

`/readyz` stays the cheap probe (apps.core.health); this report reads more (workers, schedules, samples,
thresholds) and is meant for people and dashboards.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.core import health as core_health
from apps.core.clock import SYSTEM_CLOCK
from apps.tenancy.models import Tenant

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
# A worker cluster whose last heartbeat is older than this is not alive.
WORKER_STALE_S = 60
SCHEDULE_LATE_S = 120


def worst(states) -> str:
    return max(states, key=lambda s: _RANK[s], default=OK)


def _check(state: str, value: Any = None, detail: str = "") -> dict[str, Any]:
    return {"state": state, "value": value, "detail": detail}


def _workers() -> dict[str, Any]:
    try:
        from django_q.status import Stat

        clusters = Stat.get_all()
    except Exception as exc:
        return _check(CRITICAL, None, f"{exc.__class__.__name__}: {exc}"[:200])
    now = timezone.now()
    beats = [c.timestamp for c in clusters if getattr(c, "timestamp", None)]
    last = max(beats, default=None)
    alive = [c for c in clusters if c.timestamp and (now - c.timestamp).total_seconds() <= WORKER_STALE_S]
    value = {"clusters": len(alive), "workers": sum(len(c.workers) for c in alive),
             "last_heartbeat": last.isoformat() if last else None}
    if not alive:
        return _check(CRITICAL, value, "no worker cluster reported within the last minute")
    return _check(OK, value)


def _schedules() -> dict[str, Any]:
    from django_q.models import Schedule

    late_before = timezone.now() - timedelta(seconds=SCHEDULE_LATE_S)
    bulwark = Schedule.objects.filter(name__startswith="bulwark.")
    late = list(bulwark.filter(next_run__lt=late_before).values_list("name", flat=True)[:20])
    value = {"schedules": bulwark.count(), "late": late}
    if not value["schedules"]:
        return _check(WARNING, value, "no schedules: run `manage.py jobs_sync_schedules`")
    if late:
        return _check(WARNING, value, "schedules past their next run: is a worker running them?")
    return _check(OK, value)


def _disk() -> dict[str, Any]:
    import psutil
    from django.conf import settings

    percent = psutil.disk_usage(str(getattr(settings, "VAR_DIR", "/"))).percent
    return _check(CRITICAL if percent >= 95 else WARNING if percent >= 85 else OK, percent)


def health_report(*, tenant: Tenant, now: float | None = None, store=None) -> dict[str, Any]:
    from apps.monitoring.selectors import threshold_states

    now = SYSTEM_CLOCK.time() if now is None else now
    checks: dict[str, dict[str, Any]] = {}
    for name, probe in (("database", core_health.check_database), ("redis", core_health.check_store)):
        status, detail = probe()
        checks[name] = _check(CRITICAL if status == core_health.FAIL else OK, detail)
    checks["workers"] = _workers()
    checks["schedules"] = _schedules()
    checks["disk"] = _disk()
    for dimension, figure in threshold_states(tenant=tenant, now=now, store=store).items():
        checks[f"threshold:{dimension}"] = _check(figure["state"], figure["value"],
                                                  f"warning {figure['warning']}{figure['unit']}, "
                                                  f"critical {figure['critical']}{figure['unit']}")
    for component, reason in core_health.degraded_components().items():
        checks[f"degraded:{component}"] = _check(WARNING, None, reason)
    return {"state": worst(c["state"] for c in checks.values()), "checks": checks}
