"""Reads of optimization: findings of a tenant, route figures over a time range, samples of a window."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from apps.optimization.analysis import percentile
from apps.optimization.models import Finding, RequestSample
from apps.tenancy.models import Tenant


def finding_list(*, tenant: Tenant, filters: dict[str, Any] | None = None) -> QuerySet[Finding]:
    findings = Finding.objects.for_tenant(tenant)
    for name in ("kind", "status", "severity", "route", "method"):
        value = (filters or {}).get(name)
        if value:
            findings = findings.filter(**{name: value})
    return findings


def samples_in(*, since: datetime, until: datetime, tenant_id=...) -> QuerySet[RequestSample]:
    """The samples of [since, until]; `tenant_id` ... (the default) for all traffic, None for platform traffic."""
    samples = RequestSample.objects.filter(taken_at__gte=since, taken_at__lte=until)
    if tenant_id is not ...:
        samples = samples.filter(tenant_id=tenant_id)
    return samples


def route_figures(*, tenant_id: int | None, route: str, method: str, since: datetime, until: datetime,
                  breaker: str | None = None) -> dict:
    """p50/p95/error rate of the route's sampled requests (every method when `method` is empty, as for a rate
    limit's finding); with `breaker`, of the requests whose outgoing calls went through that breaker, whatever
    their route (a system-wide breaker finding)."""
    samples = samples_in(since=since, until=until, tenant_id=tenant_id)
    if breaker is None:
        samples = samples.filter(route=route)
    if method:
        samples = samples.filter(method=method)
    if breaker is None:
        rows = list(samples.values_list("wall_ms", "status"))
    else:
        rows = [(wall, status) for wall, status, calls in samples.values_list("wall_ms", "status", "calls")
                if any(call.get("breaker") == breaker for call in calls or ())]
    walls = [wall for wall, _ in rows]
    return {"samples": len(rows), "p50_ms": round(percentile(walls, 0.5), 2), "p95_ms": round(percentile(walls, 0.95), 2),
            "error_rate": round(sum(status >= 500 for _, status in rows) / len(rows), 4) if rows else None,
            "since": since.isoformat(), "until": until.isoformat()}
