"""Every write and decision of optimization: analysis runs, findings, apply / verify / rollback, purge.

Time comes in as `now` (epoch seconds, default the clock's), so a test moves it by hand.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction

from apps.audit.services import record
from apps.core import stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.errors import ApplicationError, ConflictError
from apps.core.requests import anonymous_tenant
from apps.optimization import analysis, selectors, system
from apps.optimization.conf import optimization_settings as conf
from apps.optimization.findings import Candidate
from apps.optimization.models import SYSTEM_ROUTE, Finding, RequestSample, Status
from apps.tenancy.models import Tenant

ALL = ...  # every tenant's traffic and the platform's (the command without --tenant)
PLATFORM = object()  # traffic without a tenant and the whole system (route `-`), once per scheduled run


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)


def _now(now: float | None, clock: Clock) -> float:
    return clock.time() if now is None else now


# -- analysis -----------------------------------------------------------------------------------------
def analyze(*, window_s: int | None = None, tenant: Tenant | Any = ALL, now: float | None = None,
            clock: Clock = SYSTEM_CLOCK, progress: Callable[[int, str], None] | None = None) -> list[Candidate]:
    """Diagnose the window ending now; store the findings (deduplicated) and re-measure applied fixes.
    Returns the findings of this run, root causes only."""
    now = _now(now, clock)
    window_s = int(window_s or conf.WINDOW_S)
    until, since = _at(now), _at(now - window_s)
    stats.flush_all(now)  # this process's own buffered samples count too
    tenant_id = ALL if tenant is ALL else None if tenant is PLATFORM else tenant.pk
    samples = selectors.samples_in(since=since, until=until, tenant_id=tenant_id).defer("body_hash").iterator()
    routes = analysis.group(samples)
    breakers = _breaker_names()
    found: list[Candidate] = []
    for index, evidence in enumerate(routes):
        if progress:
            progress(int(80 * index / max(len(routes), 1)), f"{evidence.method} {evidence.route}")
        found += analysis.analyse_route(evidence, breakers=breakers.get(evidence.tenant_id, set()))
    if progress:
        progress(85, "policies and system samples")
    found += system.cache_findings(since=since, until=until, tenant_id=tenant_id)
    found += system.breaker_findings(since=since, until=until, tenant_id=tenant_id)
    found += system.ratelimit_findings(since=since, until=until, tenant_id=tenant_id)
    if tenant is ALL or tenant is PLATFORM:
        found += system.saturation_findings(since=since, until=until)
    findings_record(candidates=found, now=now)
    findings_verify(now=now, tenant_id=tenant_id)
    return found


def _breaker_names() -> dict[int | None, set[str]]:
    from apps.resilience.models import BreakerPolicy

    names: dict[int | None, set[str]] = {}
    for tenant_id, name in BreakerPolicy.objects.values_list("tenant_id", "name"):
        names.setdefault(tenant_id, set()).add(name)
    anonymous = _anonymous_tenant()
    if anonymous is not None:
        names[None] = names.get(anonymous.pk, set())
    return names


@transaction.atomic
def findings_record(*, candidates: list[Candidate], now: float) -> list[Finding]:
    """Create or update one row per (tenant, kind, method, route, subject): a later run updates, never repeats."""
    at = _at(now)
    rows = []
    for c in candidates:
        finding = Finding.objects.filter(tenant_id=c.tenant_id, kind=c.kind, method=c.method, route=c.route,
                                         subject=c.subject[:255]).first()
        if finding is None:
            finding = Finding(tenant_id=c.tenant_id, kind=c.kind, method=c.method, route=c.route[:255],
                              subject=c.subject[:255], first_seen_at=at, occurrences=0)
        finding.severity = c.severity
        finding.evidence = {"summary": c.summary, **c.evidence}
        finding.recommendation = c.recommendation
        finding.estimated_impact = c.impact[:300]
        if finding.status not in (Status.APPLIED, Status.VERIFIED, Status.REGRESSED):
            finding.fix = c.fix
        finding.last_seen_at = at
        finding.occurrences += 1
        finding.save()
        rows.append(finding)
    return rows


def findings_purge(*, now: float | None = None, clock: Clock = SYSTEM_CLOCK) -> int:
    cutoff = _at(_now(now, clock)) - timedelta(hours=conf.SAMPLE_RETENTION_HOURS)
    deleted, _ = RequestSample.objects.filter(taken_at__lt=cutoff).delete()
    return deleted


# -- apply, verify, rollback --------------------------------------------------------------------------
def _anonymous_tenant() -> Tenant | None:
    slug = anonymous_tenant()
    return Tenant.objects.filter(slug=slug).first() if slug else None


def _policy_kit(kind: str):
    """(model, create(tenant, data), update(policy, data), delete(policy)) of a policy kind."""
    if kind == "cache":
        from apps.caching import services as caching
        from apps.caching.models import CachePolicy

        return (CachePolicy, lambda t, d: caching.policy_create(tenant=t, data=d),
                lambda p, d: caching.policy_update(policy=p, data=d), lambda p: caching.policy_delete(policy=p))
    if kind == "breaker":
        from apps.resilience import services as resilience
        from apps.resilience.models import BreakerPolicy

        return (BreakerPolicy, lambda t, d: resilience.policy_create(model=BreakerPolicy, tenant=t, data=d),
                lambda p, d: resilience.policy_update(policy=p, data=d),
                lambda p: resilience.policy_delete(policy=p))
    if kind == "ratelimit":
        from apps.ratelimit import services as ratelimit
        from apps.ratelimit.models import RateLimitPolicy

        return (RateLimitPolicy, lambda t, d: ratelimit.policy_create(tenant=t, data=d),
                lambda p, d: ratelimit.policy_update(policy=p, data=d),
                lambda p: ratelimit.policy_delete(policy=p))
    raise ApplicationError(f"Unknown policy kind {kind!r}.")


def finding_figures(*, finding: Finding, since: datetime, until: datetime) -> dict | None:
    """The request times a fix is judged on: the route's requests (all methods when the finding has none, as
    for a rate limit); for a breaker's finding (route `-`), the requests whose calls went through it. None
    when nothing in the evidence names requests (saturation)."""
    if finding.route != SYSTEM_ROUTE:
        return selectors.route_figures(tenant_id=finding.tenant_id, route=finding.route, method=finding.method,
                                       since=since, until=until)
    if finding.kind == "breaker_flapping" and finding.evidence.get("breaker"):
        return selectors.route_figures(tenant_id=finding.tenant_id, route=finding.route, method="", since=since,
                                       until=until, breaker=finding.evidence["breaker"])
    return None


def _figures_before(finding: Finding, now: float) -> dict:
    figures = finding_figures(finding=finding, since=_at(now - conf.WINDOW_S), until=_at(now))
    return {"evidence": finding.evidence.get("summary", "")} if figures is None else figures


@transaction.atomic
def finding_apply(*, finding: Finding, now: float | None = None, clock: Clock = SYSTEM_CLOCK) -> Finding:
    """Create (or change) the Bulwark policy the finding proposes; audited. Re-measured after one window."""
    now = _now(now, clock)
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    if not finding.applicable:
        raise ApplicationError(
            "This finding is not applied automatically: make the change or run the statement it carries.",
            code="not_applicable", extra={"fix": finding.fix})
    if finding.status in (Status.APPLIED, Status.VERIFIED, Status.REGRESSED):
        raise ConflictError(f"The finding is already {finding.status}; roll it back first.")
    tenant = finding.tenant or _anonymous_tenant()
    if tenant is None:
        raise ApplicationError("Platform traffic has no tenant to own the policy: configure "
                               "BULWARK['CORE']['ANONYMOUS_TENANT'].", code="no_tenant")
    model, create, update, _ = _policy_kit(finding.fix["policy"])
    data = dict(finding.fix["data"])
    if "update" in finding.fix:
        policy = model.objects.for_tenant(tenant).filter(pk=finding.fix["update"]).first()
        if policy is None:
            raise ApplicationError("The policy this finding changes no longer exists.", code="policy_gone")
        previous = {name: getattr(policy, name) for name in data}
        update(policy, data)
        action = "update"
    else:
        existing = model.objects.for_tenant(tenant).filter(name=data["name"]).first()
        if existing is not None:
            raise ConflictError(f"A policy named {data['name']!r} already exists; edit it instead.",
                                extra={"policy_id": existing.pk})
        policy = create(tenant, data)
        previous = {}
        action = "create"
    finding.applied = {"policy": finding.fix["policy"], "model": model._meta.label, "pk": policy.pk,
                       "action": action, "previous": _jsonable(previous), "window_s": int(conf.WINDOW_S)}
    finding.before = _figures_before(finding, now)
    finding.after = {}
    finding.applied_at = _at(now)
    finding.measured_at = None
    finding.status = Status.APPLIED
    finding.save()
    record(action="optimization.apply", obj=finding, tenant=tenant,
           changes={"policy": f"{model._meta.label}#{policy.pk}", "action": action, "data": _jsonable(data)})
    return finding


def _jsonable(values: dict) -> dict:
    return {k: (v if isinstance(v, bool | int | float | str | list | dict | type(None)) else str(v))
            for k, v in values.items()}


def findings_verify(*, now: float, tenant_id=ALL) -> list[Finding]:
    """Re-measure fixes applied one window ago: `verified` when p95 fell by VERIFY_MIN_GAIN, else `regressed`.
    A route that had too little traffic since waits; a system-wide finding is verified when it was not
    found again since it was applied."""
    done = []
    applied = Finding.objects.filter(status=Status.APPLIED)
    if tenant_id is not ALL:
        applied = applied.filter(tenant_id=tenant_id)
    for finding in applied:
        window_s = finding.applied.get("window_s", conf.WINDOW_S)
        end = finding.applied_at + timedelta(seconds=window_s)
        if end > _at(now):
            continue
        after = finding_figures(finding=finding, since=finding.applied_at, until=end)
        if finding.route == SYSTEM_ROUTE:  # judged on whether it was found again; the times are shown
            after = {"found_again": finding.last_seen_at > finding.applied_at, **({"requests": after} if after else {})}
            better = not after["found_again"]
        else:
            if after["samples"] < conf.MIN_SAMPLES:
                continue
            before_p95 = finding.before.get("p95_ms") or 0
            better = after["p95_ms"] <= before_p95 * (1 - conf.VERIFY_MIN_GAIN)
        finding_measured(finding=finding, after=after, verified=better, now=now)
        done.append(finding)
    return done


@transaction.atomic
def finding_measured(*, finding: Finding, after: dict, verified: bool, now: float) -> Finding:
    status = Status.VERIFIED if verified else Status.REGRESSED
    previous = finding.status
    finding.after = after
    finding.measured_at = _at(now)
    finding.status = status
    finding.save()
    record(action=f"optimization.{status}", obj=finding, tenant=finding.tenant or _anonymous_tenant(),
           changes={"status": [previous, status], "before": finding.before, "after": after})
    return finding


@transaction.atomic
def finding_rollback(*, finding: Finding) -> Finding:
    """Undo an applied fix (delete the policy it created, or restore the values it changed); audited."""
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    if finding.status not in (Status.APPLIED, Status.VERIFIED, Status.REGRESSED):
        raise ConflictError(f"Only an applied fix can be rolled back; this finding is {finding.status}.")
    tenant = finding.tenant or _anonymous_tenant()
    model, _, update, delete = _policy_kit(finding.applied["policy"])
    policy = model.objects.for_tenant(tenant).filter(pk=finding.applied["pk"]).first()
    if policy is not None:
        if finding.applied["action"] == "create":
            delete(policy)
        else:
            update(policy, finding.applied["previous"])
    previous_status = finding.status
    record(action="optimization.rollback", obj=finding, tenant=tenant,
           changes={"status": [previous_status, Status.OPEN], "policy": f"{model._meta.label}#{finding.applied['pk']}",
                    "restored": finding.applied["previous"] or "deleted"})
    finding.status = Status.OPEN
    finding.applied = {}
    finding.applied_at = None
    finding.save()
    return finding


TRIAGE = (Status.OPEN, Status.ACCEPTED, Status.DISMISSED)


@transaction.atomic
def finding_triage(*, finding: Finding, status: str) -> Finding:
    """Accept or dismiss (or reopen) a finding; audited. Applied states change only by apply and rollback."""
    if status not in TRIAGE:
        raise ApplicationError(f"Status must be one of {', '.join(TRIAGE)}.", code="invalid",
                               extra={"fields": {"status": ["Not a triage status."]}})
    if finding.status not in TRIAGE:
        raise ConflictError(f"The finding is {finding.status}; roll it back first.")
    previous = finding.status
    finding.status = status
    finding.save(update_fields=["status"])
    record(action="optimization.triage", obj=finding, tenant=finding.tenant or _anonymous_tenant(),
           changes={"status": [previous, status]})
    return finding
