"""The one decision function of all three doors: the middleware and the DRF throttle reach `decide` through
`decide_request`, the check API through `check`. The store is reached through core's StoreGuard: while it is
down each policy's failure mode decides."""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.http import HttpRequest

from apps.core.errors import ApplicationError
from apps.core.requests import anonymous_tenant
from apps.core.store import StoreGuard, StoreUnavailable
from apps.ratelimit import stats
from apps.ratelimit.algorithms import Outcome
from apps.ratelimit.backends import get_backend
from apps.ratelimit.backends.base import Hit, RateLimitBackend
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.keys import request_key, state_key
from apps.ratelimit.matching import EMPTY, CompiledPolicy, PolicySet
from apps.ratelimit.models import ANONYMOUS_ROLE
from apps.ratelimit.snapshot import policies_for_anonymous, policies_for_tenant
from apps.tenancy.models import Tenant

HEALTH_COMPONENT = "ratelimit:store"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    policy: CompiledPolicy
    key: str
    outcome: Outcome
    degraded: bool = False  # decided by the policy's failure mode because the store was unreachable
    reason: str | None = None  # why no wait would ever make it pass (a cost above what the policy allows)
    descriptor: int | None = None  # the check API's descriptor this answers (its index)

    @property
    def shadow(self) -> bool:
        return not self.policy.enforce

    @property
    def retry_after_exact_s(self) -> float | None:
        """Seconds until this would pass, unrounded (the check API); None when it never will."""
        return None if self.reason is not None else self.outcome.retry_after_us / 1_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    """`allowed` is False only when an enforcing policy refused; `deciding` is the strictest enforcing
    policy (the refusal with the longest wait, else the one with the least remaining)."""

    allowed: bool
    policies: tuple[PolicyDecision, ...]
    deciding: PolicyDecision | None

    @property
    def retry_after_s(self) -> int:
        """Whole seconds, rounded up: the Retry-After header."""
        return 0 if self.allowed or self.deciding is None else self.deciding.outcome.retry_after_s

    @property
    def retry_after_exact_s(self) -> float | None:
        """Seconds as a float (the check API): 0.5 where a header would say 1; None when no wait helps."""
        return 0.0 if self.allowed or self.deciding is None else self.deciding.retry_after_exact_s

    @property
    def reason(self) -> str | None:
        return None if self.allowed or self.deciding is None else self.deciding.reason

    @property
    def enforced(self) -> list[PolicyDecision]:
        return [d for d in self.policies if d.policy.enforce]


ALLOW_ALL = Decision(True, (), None)


@dataclass(frozen=True, slots=True)
class Target:
    """One policy to apply with the key value it limits and the units the request costs."""

    policy: CompiledPolicy
    key: str
    cost: int = 1
    descriptor: int | None = None


def decide(
    *, targets: Sequence[Target], backend: RateLimitBackend | None = None, dry_run: bool = False
) -> Decision:
    """Apply every target in one atomic backend call; count each policy's verdict in the per-minute stats.

    A target costing more than its policy can ever allow is refused with a `reason` (no wait helps) while
    the others are decided in the same call; as with any enforcing refusal, nothing is consumed. A
    `dry_run` decides the same way, stores nothing and counts nothing.
    """
    if not targets:
        return ALLOW_ALL
    backend = backend or get_backend()
    keys = [
        state_key(tenant_id=t.policy.tenant_id, policy_id=t.policy.id, algorithm=t.policy.limit.algorithm, key=t.key)
        for t in targets
    ]
    hits: list[Hit] = []
    hit_policies: list[CompiledPolicy] = []
    slot: dict[str, int] = {}
    for target, skey in zip(targets, keys, strict=True):
        if skey in slot:  # the same policy and key named twice: one hit costing both
            i = slot[skey]
            hits[i] = Hit(skey, hits[i].limit, hits[i].cost + target.cost, hits[i].enforce)
            continue
        slot[skey] = len(hits)
        hits.append(Hit(skey, target.policy.limit, target.cost, target.policy.enforce))
        hit_policies.append(target.policy)
    outcomes, degraded = _decide_guarded(backend, hits, hit_policies, dry_run=dry_run)
    reasons = [
        f"{hit.cost} units exceed the {hit.limit.capacity} that policy {policy.name!r} can ever allow at once."
        if hit.cost > hit.limit.capacity else None
        for hit, policy in zip(hits, hit_policies, strict=True)
    ]
    decisions = tuple(
        PolicyDecision(t.policy, t.key, outcomes[slot[skey]], degraded, reasons[slot[skey]], t.descriptor)
        for t, skey in zip(targets, keys, strict=True)
    )
    if not dry_run:  # a dry run or a peek (hits 0) is a question, not traffic: it stays out of the stats
        stats.count([d for d, t in zip(decisions, targets, strict=True) if t.cost > 0])
    return _combine(decisions)


def _combine(decisions: tuple[PolicyDecision, ...]) -> Decision:
    enforced = [d for d in decisions if d.policy.enforce]
    refused = [d for d in enforced if not d.outcome.allowed]
    if refused:
        deciding = max(refused, key=lambda d: (d.reason is not None, d.outcome.retry_after_us, -d.policy.priority))
        return Decision(False, decisions, deciding)
    deciding = min(enforced, key=lambda d: (d.outcome.remaining, d.policy.priority)) if enforced else None
    return Decision(True, decisions, deciding)


_guards: weakref.WeakKeyDictionary[RateLimitBackend, StoreGuard] = weakref.WeakKeyDictionary()
_last_guard: tuple[Callable[[], RateLimitBackend | None], StoreGuard | None] = (lambda: None, None)


def store_guard(backend: RateLimitBackend) -> StoreGuard:
    """One guard per backend instance (a test's private Redis does not share the configured one's outage)."""
    global _last_guard
    last_backend, guard = _last_guard
    if last_backend() is backend:  # the configured backend, request after request: no weak-dict lookup
        return guard
    guard = _guards.get(backend)
    if guard is None:
        guard = _guards.setdefault(backend, StoreGuard(
            HEALTH_COMPONENT, description="rate-limit store (applying each policy's failure mode)",
            aliases={"STORE_RETRY_INTERVAL_S": (ratelimit_settings, "STORE_RETRY_INTERVAL_S"),
                     "OUTAGE_LOG_INTERVAL_S": (ratelimit_settings, "OUTAGE_LOG_INTERVAL_S")},
        ))
    _last_guard = (weakref.ref(backend), guard)
    return guard


def _decide_guarded(
    backend: RateLimitBackend, hits: list[Hit], policies: list[CompiledPolicy], *, dry_run: bool = False
) -> tuple[list[Outcome], bool]:
    # StoreGuard.run spelled out: this runs on every request, two closures per call are measurable.
    guard = store_guard(backend)
    if guard.available():
        try:
            outcomes = backend.decide(hits, dry_run=dry_run)
        except StoreUnavailable as exc:
            guard.failed(exc)
        else:
            guard.succeeded()
            return outcomes, False
    retry_us = int(ratelimit_settings.FAIL_CLOSED_RETRY_AFTER_S * 1_000_000)
    return [
        Outcome(False, hit.limit.capacity, 0, retry_us, retry_us)
        if policy.fail_closed
        else Outcome(True, hit.limit.capacity, hit.limit.capacity, 0, 0)
        for hit, policy in zip(hits, policies, strict=True)
    ], True


# --- the request door (middleware and DRF throttle) ----------------------------------------------------------

def request_policy_set(request: HttpRequest) -> PolicySet:
    """A tenant's requests follow its policies; every request without a tenant (nobody signed in, or a
    signed-in user with no membership) those of the anonymous tenant, so nobody escapes the login limits."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return policies_for_tenant(tenant.pk)
    slug = anonymous_tenant(ratelimit_settings)
    return policies_for_anonymous(slug) if slug else EMPTY


def request_role(request: HttpRequest) -> str:
    """The caller's role in the governing tenant; `anonymous` when it holds none there (see README)."""
    if getattr(request, "tenant", None) is None:
        return ANONYMOUS_ROLE
    return getattr(request, "role", None) or ANONYMOUS_ROLE


def decide_request(
    *, request: HttpRequest, policies: Sequence[CompiledPolicy], backend: RateLimitBackend | None = None
) -> Decision:
    targets = []
    for policy in policies:
        key = request_key(policy=policy, request=request)
        if key is not None:
            targets.append(Target(policy, key))
    return decide(targets=targets, backend=backend)


# --- the check API door -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Descriptor:
    """What another service asks about: a policy by name, or the attributes of its request; the key value
    (e.g. its client's id) and the units to take (0: read the state without taking any).

    Keys follow one scheme with the middleware and the reset-key action, so a service and the middleware
    share a counter when they name it the same way: `ip:<address>`, `user:<user id>`, `token:<token id>`,
    `header:<header value>`, `tenant:<tenant id>`. Any other string is a counter of the service's own.
    """

    key: str
    hits: int = 1
    policy: str | None = None
    route: str | None = None
    path: str = ""
    method: str = ""
    role: str = ANONYMOUS_ROLE


def check(
    *, tenant: Tenant, descriptors: Sequence[Descriptor], dry_run: bool = False,
    backend: RateLimitBackend | None = None,
) -> Decision:
    policy_set = policies_for_tenant(tenant.pk)
    targets, errors = [], {}
    for i, descriptor in enumerate(descriptors):
        if descriptor.policy is not None:
            policy = policy_set.by_name.get(descriptor.policy)
            if policy is None:
                if descriptor.policy not in policy_set.disabled_names:
                    errors[str(i)] = {"policy": [f"No policy named {descriptor.policy!r} in this tenant."]}
                continue
            policies = [policy]
        else:
            policies = policy_set.matching(
                route=descriptor.route, path=descriptor.path, method=descriptor.method.upper(), role=descriptor.role
            )
        targets.extend(Target(policy, descriptor.key, descriptor.hits, i) for policy in policies)
    if errors:
        raise ApplicationError("Invalid descriptors.", extra={"errors": {"descriptors": errors}})
    return decide(targets=targets, backend=backend, dry_run=dry_run)
