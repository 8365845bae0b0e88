"""Every rate-limit write and decision. `decide` is the one decision function of all three doors:
the middleware and the DRF throttle reach it through `decide_request`, the check API through `check`."""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.signals import setting_changed
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils.module_loading import import_string

from apps.audit.services import record
from apps.core import health
from apps.core.batching import BatchedCounters
from apps.core.context import Actor
from apps.core.errors import ApplicationError
from apps.core.net import client_ip
from apps.core.services import model_create, model_delete, model_update
from apps.core.store import redis_client, store_key
from apps.ratelimit.algorithms import Outcome
from apps.ratelimit.backends.base import Hit, RateLimitBackend, StoreUnavailable
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.matching import (
    EMPTY,
    CompiledPolicy,
    PolicySet,
    policies_for_anonymous,
    policies_for_tenant,
)
from apps.ratelimit.models import ANONYMOUS_ROLE, RateLimitPolicy, RateLimitStat
from apps.tenancy.models import Tenant

log = logging.getLogger(__name__)
HEALTH_COMPONENT = "ratelimit:store"
_SAFE_KEY = re.compile(r"^[\w.:@/-]{1,96}$")


# --- decisions ---------------------------------------------------------------------------------------------

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


def state_key(*, tenant_id: int, policy_id: int, algorithm: str, key: str) -> str:
    if not _SAFE_KEY.match(key):
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    # The {t<id>} hash tag puts all keys of one tenant in one Redis Cluster slot: one script per decision.
    # The algorithm is part of the key, so switching a policy's algorithm never reads the other's state.
    return store_key("ratelimit", f"{{t{tenant_id}}}", policy_id, algorithm, key)


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
        _count([d for d, t in zip(decisions, targets, strict=True) if t.cost > 0])
    return _combine(decisions)


def _combine(decisions: tuple[PolicyDecision, ...]) -> Decision:
    enforced = [d for d in decisions if d.policy.enforce]
    refused = [d for d in enforced if not d.outcome.allowed]
    if refused:
        deciding = max(refused, key=lambda d: (d.reason is not None, d.outcome.retry_after_us, -d.policy.priority))
        return Decision(False, decisions, deciding)
    deciding = min(enforced, key=lambda d: (d.outcome.remaining, d.policy.priority)) if enforced else None
    return Decision(True, decisions, deciding)


class StoreGuard:
    """After a failure, decide without the store for STORE_RETRY_INTERVAL_S, then let one call try again;
    log at most once per OUTAGE_LOG_INTERVAL_S. Recovery needs nothing but the store coming back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.down_until = 0.0
        self.last_log = float("-inf")
        self.suppressed = 0
        self.lock = threading.Lock()

    def available(self) -> bool:
        return self.clock() >= self.down_until

    def failed(self, reason: str) -> None:
        now = self.clock()
        with self.lock:
            self.down_until = now + ratelimit_settings.STORE_RETRY_INTERVAL_S
            if now - self.last_log >= ratelimit_settings.OUTAGE_LOG_INTERVAL_S:
                log.error("rate-limit store unreachable (%s); applying each policy's failure mode"
                          " (%d similar failures not logged)", reason, self.suppressed)
                self.last_log, self.suppressed = now, 0
            else:
                self.suppressed += 1
        health.mark_degraded(HEALTH_COMPONENT, f"store unreachable: {reason}")

    def succeeded(self) -> None:
        if self.down_until:
            with self.lock:
                self.down_until = 0.0
                self.last_log = float("-inf")
            health.mark_ok(HEALTH_COMPONENT)


_guards: weakref.WeakKeyDictionary[RateLimitBackend, StoreGuard] = weakref.WeakKeyDictionary()


def store_guard(backend: RateLimitBackend) -> StoreGuard:
    guard = _guards.get(backend)
    if guard is None:
        guard = _guards.setdefault(backend, StoreGuard())
    return guard


def _decide_guarded(
    backend: RateLimitBackend, hits: list[Hit], policies: list[CompiledPolicy], *, dry_run: bool = False
) -> tuple[list[Outcome], bool]:
    guard = store_guard(backend)
    if guard.available():
        try:
            outcomes = backend.decide(hits, dry_run=dry_run)
        except StoreUnavailable as exc:
            guard.failed(str(exc))
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
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return policies_for_tenant(tenant.pk)
    slug = ratelimit_settings.ANONYMOUS_TENANT
    return policies_for_anonymous(slug) if slug else EMPTY


def request_role(request: HttpRequest) -> str:
    if getattr(request, "tenant", None) is None:
        return ANONYMOUS_ROLE
    return getattr(request, "role", None) or ANONYMOUS_ROLE


def request_key(*, policy: CompiledPolicy, request: HttpRequest) -> str | None:
    """The key value a policy limits for this request; None when the request has none (a missing header)."""
    kind = policy.key_kind
    if kind == RateLimitPolicy.KeyKind.HEADER:
        value = request.META.get(policy.header_meta)
        return f"header:{value}" if value else None
    if kind == RateLimitPolicy.KeyKind.TENANT:
        tenant = getattr(request, "tenant", None)
        return f"tenant:{tenant.pk if tenant is not None else '-'}"
    actor = getattr(request, "actor", None)
    if actor is not None and kind in (RateLimitPolicy.KeyKind.USER, RateLimitPolicy.KeyKind.TOKEN):
        if actor.kind == "token":
            return f"token:{actor.id}"
        if actor.kind == "user" and kind == RateLimitPolicy.KeyKind.USER:
            return f"user:{actor.id}"
    address = getattr(request, "client_ip", None) or client_ip(request)
    return f"ip:{address}"


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


# --- backend ----------------------------------------------------------------------------------------------

_backend: RateLimitBackend | None = None
_backend_lock = threading.Lock()


def get_backend() -> RateLimitBackend:
    """The configured backend, built once per process."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = _build_backend()
    return _backend


def _build_backend() -> RateLimitBackend:
    path = ratelimit_settings.BACKEND
    if path is None:
        path = (
            "apps.ratelimit.backends.redis.RedisBackend"
            if redis_client() is not None
            else "apps.ratelimit.backends.memory.MemoryBackend"
        )
    return import_string(path)()


def _forget_backend(*, setting: str, **kwargs: Any) -> None:
    global _backend
    if setting in {"BULWARK", "CACHES"}:
        _backend = None


setting_changed.connect(_forget_backend, dispatch_uid="ratelimit-backend-reset")


# --- stats ---------------------------------------------------------------------------------------------------

def _flush_stats(batch: dict[Hashable, Counter]) -> None:
    try:
        _write_stats(batch)
    finally:
        if threading.current_thread().name.startswith("bulwark-flush-"):
            # The flush thread writes every few seconds; holding its connection in between would keep
            # a database session open per process for nothing (and block dropping a test database).
            connection.close()


def _write_stats(batch: dict[Hashable, Counter]) -> None:
    policy_ids = {policy_id for _, policy_id, _ in batch}
    live = set(RateLimitPolicy.objects.filter(pk__in=policy_ids).values_list("pk", flat=True))
    for (tenant_id, policy_id, minute_s), counts in batch.items():
        if policy_id not in live:
            continue  # deleted since: its stats went with it
        minute = datetime.fromtimestamp(minute_s, tz=UTC)
        increments = {f: F(f) + counts[f] for f in ("allowed", "denied", "shadow_denied") if counts[f]}
        for _ in range(2):  # a concurrent first insert of the same minute makes the second try an update
            try:
                with transaction.atomic():
                    if RateLimitStat.objects.filter(policy_id=policy_id, minute=minute).update(**increments):
                        break
                    RateLimitStat.objects.create(
                        tenant_id=tenant_id, policy_id=policy_id, minute=minute,
                        allowed=counts["allowed"], denied=counts["denied"], shadow_denied=counts["shadow_denied"],
                    )
                    break
            except IntegrityError:
                continue


stats_counters = BatchedCounters(
    "ratelimit-stats", _flush_stats, interval_s=ratelimit_settings.STATS_FLUSH_INTERVAL_S
)


def _count(decisions: Sequence[PolicyDecision]) -> None:
    minute_s = int(time.time()) // 60 * 60
    for d in decisions:
        field = "allowed" if d.outcome.allowed else ("denied" if d.policy.enforce else "shadow_denied")
        stats_counters.add((d.policy.tenant_id, d.policy.id, minute_s), field)


def stats_flush() -> None:
    stats_counters.flush_now()


@transaction.atomic
def stats_purge(*, tenant: Tenant, older_than: datetime, actor: Actor | None = None) -> int:
    """Delete the tenant's per-minute stats of minutes before `older_than`; one audit event says how many."""
    deleted, _ = RateLimitStat.objects.for_tenant(tenant).filter(minute__lt=older_than).delete()
    record(action="ratelimit.stats_retention", tenant=tenant, actor=actor, object_type="bulwark_ratelimit.ratelimitstat",
           changes={"older_than": older_than.isoformat(), "deleted": deleted})
    return deleted


# --- policies and operations ---------------------------------------------------------------------------------

@transaction.atomic
def policy_create(*, tenant: Tenant, data: dict[str, Any]) -> RateLimitPolicy:
    return model_create(model=RateLimitPolicy, data=data, tenant=tenant)


@transaction.atomic
def policy_update(*, policy: RateLimitPolicy, data: dict[str, Any]) -> RateLimitPolicy:
    return model_update(instance=policy, data=data)


@transaction.atomic
def policy_delete(*, policy: RateLimitPolicy) -> None:
    model_delete(instance=policy)


@transaction.atomic
def counter_reset(
    *, policy: RateLimitPolicy, key: str, actor: Actor | None = None, backend: RateLimitBackend | None = None
) -> bool:
    """Forget one key's state under a policy (a client locked out by mistake); audited. True if it existed."""
    backend = backend or get_backend()
    try:
        existed = backend.reset(
            state_key(tenant_id=policy.tenant_id, policy_id=policy.pk, algorithm=policy.algorithm, key=key)
        )
    except StoreUnavailable as exc:
        raise ApplicationError(
            "The rate-limit store is unreachable; try again.", code="store_unavailable", status=503
        ) from exc
    record(action="ratelimit.reset_key", obj=policy, actor=actor, changes={"key": key, "existed": existed})
    return existed
