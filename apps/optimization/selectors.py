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


def route_figures(*, tenant_id: int | None, route: str, method: str, since: datetime, until: datetime) -> dict:
    rows = list(samples_in(since=since, until=until, tenant_id=tenant_id).filter(route=route, method=method)
                .values_list("wall_ms", "status"))
    walls = [wall for wall, _ in rows]
    return {"samples": len(rows), "p50_ms": round(percentile(walls, 0.5), 2), "p95_ms": round(percentile(walls, 0.95), 2),
            "error_rate": round(sum(status >= 500 for _, status in rows) / len(rows), 4) if rows else None,
            "since": since.isoformat(), "until": until.isoformat()}
