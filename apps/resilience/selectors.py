"""Reads of the resilience app: live breaker states and the per-minute dependency scorecard."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.core import histogram
from apps.resilience.machine import HALF_OPEN, BreakerConfig, rates_computed
from apps.resilience.models import BreakerEvent, BreakerPolicy, DependencyMinute
from apps.resilience.runtime import get_breaker
from apps.resilience.snapshot import policy_snapshot
from apps.tenancy.models import Tenant


def last_transition_annotations() -> dict[str, Subquery]:
    """`last_transition_at` and `last_transition_to` of a BreakerPolicy queryset, from its latest event."""
    last = BreakerEvent.objects.filter(tenant_id=OuterRef("tenant_id"), name=OuterRef("name")).order_by("-at", "-id")
    return {"last_transition_at": Subquery(last.values("at")[:1]),
            "last_transition_to": Subquery(last.values("to_state")[:1])}


def breaker_live(*, policy: BreakerPolicy) -> dict[str, Any]:
    """The shared state and window figures of a policy's breaker, read from the store now."""
    breaker = get_breaker(policy.name, policy.tenant_id)
    shared = breaker.sync()
    figures = shared.figures
    state = policy.forced_state if policy.forced_state != "none" else shared.state
    config = breaker.config if breaker.config.policy_id == policy.pk else BreakerConfig(
        name=policy.name, window_kind=policy.window_kind, window_size=policy.window_size,
        minimum_calls=policy.minimum_calls,
    )
    computed = shared.state == HALF_OPEN or rates_computed(config, figures)
    return {
        "state": state,
        "shared_state": shared.state,
        "open_until": shared.open_until or None,
        "calls": figures.calls,
        "failures": figures.failures,
        "slow_calls": figures.slow,
        "rates_computed": computed,
        "failure_rate_pct": figures.failure_rate_pct if computed else None,
        "slow_rate_pct": figures.slow_rate_pct if computed else None,
        "consecutive_failures": figures.consecutive,
        "half_open_mode": policy.half_open_mode,
        "degraded": policy_snapshot.get(policy.tenant_id).broken.get(policy.name, ""),
    }


def scorecard_figures(minutes: list[DependencyMinute]) -> dict[str, Any]:
    """The scorecard figures of one or many minutes of a dependency (the API and the admin show these)."""
    calls = sum(m.calls for m in minutes)
    cost_calls = sum(m.cost_calls for m in minutes)
    p50_ms, p95_ms = histogram.quantiles_ms(histogram.merge(m.histogram for m in minutes), (0.50, 0.95))
    failures = sum(m.failures for m in minutes)
    ignored = sum(m.ignored for m in minutes)
    judged = calls - ignored
    return {
        "calls": calls,
        "failures": failures,
        "ignored": ignored,
        "slow_calls": sum(m.slow_calls for m in minutes),
        "rejected": sum(m.rejected for m in minutes),
        "success_rate_pct": round(100.0 * (judged - failures) / judged, 2) if judged else None,
        "avg_ms": round(sum(m.duration_ms_sum for m in minutes) / calls, 3) if calls else None,
        "p50_ms": None if p50_ms is None else round(p50_ms, 3),
        "p95_ms": None if p95_ms is None else round(p95_ms, 3),
        "cost_per_call": round(sum(m.cost_sum for m in minutes) / cost_calls, 6) if cost_calls else None,
    }


def dependency_scorecard(*, tenant: Tenant, name: str, minutes: int = 60) -> dict[str, Any]:
    since = timezone.now() - timedelta(minutes=minutes)
    rows = list(DependencyMinute.objects.for_tenant(tenant).filter(name=name, minute__gte=since).order_by("minute"))
    return {
        "name": name,
        "minutes": minutes,
        "total": scorecard_figures(rows),
        "per_minute": [{"minute": row.minute, **scorecard_figures([row])} for row in rows],
    }


def dependency_known(*, tenant: Tenant, name: str) -> bool:
    return (
        BreakerPolicy.objects.for_tenant(tenant).filter(name=name).exists()
        or DependencyMinute.objects.for_tenant(tenant).filter(name=name).exists()
    )
