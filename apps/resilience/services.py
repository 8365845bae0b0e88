"""Every write and decision of the resilience app: policies, operator actions, and the decision API.

The policy snapshot follows both policy models by itself (`snapshot.py`): no write here invalidates it."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from apps.audit.services import record
from apps.core import health
from apps.core.context import Actor
from apps.core.errors import ApplicationError, ConflictError, NotFoundError
from apps.core.services import integrity_as_field_error, model_create, model_delete, model_update
from apps.resilience.errors import BreakerOpen
from apps.resilience.machine import FAILURE, IGNORED, SUCCESS, SharedState
from apps.resilience.models import BreakerEvent, BreakerPolicy, DependencyMinute, ForcedState, RetryPolicy
from apps.resilience.runtime import Permit, get_breaker
from apps.resilience.snapshot import policy_health_component, policy_snapshot
from apps.tenancy.models import Tenant

FORCE_ACTIONS = {
    ForcedState.FORCED_OPEN: "breaker.force_open",
    ForcedState.FORCED_CLOSED: "breaker.force_close",
    ForcedState.DISABLED: "breaker.disable",
    ForcedState.METRICS_ONLY: "breaker.metrics_only",
}


Policy = BreakerPolicy | RetryPolicy


@transaction.atomic
def policy_create(*, model: type[Policy], tenant: Tenant, data: Mapping[str, Any]) -> Policy:
    """Create a breaker or retry policy; every process compiles it within the snapshot interval."""
    with integrity_as_field_error(field="name", message="A policy with this name already exists."):
        return model_create(model=model, data=data, tenant=tenant)


@transaction.atomic
def policy_update(*, policy: Policy, data: Mapping[str, Any]) -> Policy:
    with integrity_as_field_error(field="name", message="A policy with this name already exists."):
        return model_update(instance=policy, data=data)


@transaction.atomic
def policy_delete(*, policy: Policy) -> None:
    tenant_id = policy.tenant_id
    model_delete(instance=policy)
    kind = "policy" if isinstance(policy, BreakerPolicy) else "retry-policy"
    health.mark_ok(policy_health_component(tenant_id, policy.name, kind))  # a broken policy deleted is no longer


@transaction.atomic
def breaker_force(*, policy: BreakerPolicy, forced_state: str) -> BreakerPolicy:
    """Force open, force closed or disable: takes effect in every process within the snapshot interval."""
    previous = policy.forced_state
    policy.forced_state = forced_state
    policy.save(update_fields=["forced_state", "updated_at"])
    record(action=FORCE_ACTIONS[forced_state], obj=policy, changes={"forced_state": [previous, forced_state]})
    if forced_state == ForcedState.METRICS_ONLY and previous != ForcedState.METRICS_ONLY:
        # resilience4j's metrics-only state starts from fresh figures, and never leaves closed.
        get_breaker(policy.name, policy.tenant_id).reset(reason="entering metrics only")
    return policy


@transaction.atomic
def breaker_reset(*, policy: BreakerPolicy) -> SharedState:
    """Back to automatic, closed, with an empty window and the open history forgotten."""
    previous = policy.forced_state
    policy.forced_state = ForcedState.NONE
    policy.save(update_fields=["forced_state", "updated_at"])
    shared = get_breaker(policy.name, policy.tenant_id).reset()
    record(
        action="breaker.reset", obj=policy,
        changes={"forced_state": [previous, ForcedState.NONE], "state": [shared.transition.from_state, "closed"]},
    )
    return shared


@dataclass(frozen=True)
class Decision:
    name: str
    permitted: bool
    state: str
    probe: bool = False
    retry_after_s: float | None = None
    reason: str = ""
    ticket: str | None = None


def _configured_breaker(tenant: Tenant, name: str):
    breaker = get_breaker(name, tenant)
    if breaker.config.policy_id is None:
        broken = policy_snapshot.get(tenant.pk).broken.get(name)
        if broken:
            raise ApplicationError(
                f"The breaker policy {name!r} cannot be compiled ({broken}); fix it in the admin or the API.",
                code="policy_degraded", status=503,
            )
        raise NotFoundError(f"No breaker policy named {name!r}.")
    return breaker


def breaker_acquire(*, tenant: Tenant, name: str) -> Decision:
    """The decision API: may a service in any language call `name` now? In half-open, a probe ticket."""
    breaker = _configured_breaker(tenant, name)
    try:
        # No bulkhead here: a slot cannot be held across two HTTP calls of a caller that may vanish. No wait
        # either (a gated breaker whose budget is taken refuses at once), and no in-flight count: the call is
        # made elsewhere, and its gate ticket (if any) stands for it until reported or timed out.
        permit = breaker.acquire(bulkhead=False, wait=False, in_flight=False)
    except BreakerOpen as refusal:
        return Decision(name, False, refusal.state, retry_after_s=refusal.retry_after_s, reason=str(refusal))
    forced = breaker.config.forced_state
    return Decision(name, True, forced if forced != ForcedState.NONE else breaker.state, probe=permit.probe,
                    ticket=permit.ticket or permit.gate)


@dataclass(frozen=True)
class Report:
    name: str
    outcome: str
    duration_ms: float
    cost: float | None = None
    probe: bool = False
    ticket: str | None = None


@dataclass(frozen=True)
class ReportResult:
    accepted: int
    expired_probes: int = 0


def breaker_report(*, tenant: Tenant, reports: Iterable[Report]) -> ReportResult:
    """Outcomes of calls made elsewhere; every name must have a policy, checked before anything is counted.

    A probe outcome whose ticket expired (not reported within PROBE_TIMEOUT_S, so given back) or is unknown
    is not judged: it is counted as ignored in the scorecard and in `expired_probes`.
    """
    reports = list(reports)
    breakers = {r.name: _configured_breaker(tenant, r.name) for r in reports}
    expired = 0
    for report in reports:
        breaker = breakers[report.name]
        permit = Permit(ticket=report.ticket if report.probe else None, counted=True, started=0.0,
                        gate=None if report.probe else report.ticket)
        outcome = report.outcome if report.outcome in (SUCCESS, FAILURE, IGNORED) else FAILURE
        accepted = breaker.record(permit, outcome, duration_s=report.duration_ms / 1000.0, cost=report.cost,
                                  probe=report.probe)
        expired += not accepted
    return ReportResult(accepted=len(reports) - expired, expired_probes=expired)


def breaker_report_one(*, tenant: Tenant, report: Report) -> ReportResult:
    """One outcome; a probe whose ticket expired is refused with 409 (and counted as ignored)."""
    result = breaker_report(tenant=tenant, reports=[report])
    if result.expired_probes:
        raise ConflictError(
            "This probe ticket expired (not reported within the probe timeout) or the breaker has moved on; "
            "the outcome was counted as ignored.", code="probe_expired",
        )
    return result


@transaction.atomic
def history_purge(*, tenant: Tenant, older_than: datetime, actor: Actor | None = None) -> dict[str, int]:
    """Delete the tenant's breaker transitions and scorecard minutes before `older_than`; one audit event."""
    events, _ = BreakerEvent.objects.for_tenant(tenant).filter(at__lt=older_than).delete()
    minutes, _ = DependencyMinute.objects.for_tenant(tenant).filter(minute__lt=older_than).delete()
    deleted = {"events": events, "minutes": minutes}
    record(action="resilience.retention", tenant=tenant, actor=actor, object_type="bulwark_resilience.history",
           changes={"older_than": older_than.isoformat(), **deleted})
    return deleted
