"""The breaker and retry policies of each tenant, compiled into an in-process snapshot that follows both models.

Every save and delete of a `BreakerPolicy` or `RetryPolicy`, from any door (admin, its bulk "Delete selected",
API, ORM, shell), bumps the tenant's version after commit, so every process recompiles within the snapshot
interval; a process that drops a tenant's copy also tells its breakers to look their policy up again.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from apps.core import health
from apps.core.snapshot import CompiledSnapshot
from apps.resilience.machine import BreakerConfig
from apps.resilience.models import BreakerPolicy, RetryPolicy
from apps.resilience.retry import RetryConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policies:
    breakers: dict[str, BreakerConfig]
    retries: dict[str, RetryConfig]
    broken: dict[str, str] = field(default_factory=dict)  # breaker policies that cannot compile, with why


def policy_health_component(tenant_id: Hashable, name: str, kind: str = "policy") -> str:
    """The health component of one policy that cannot be compiled, e.g. `resilience:policy:7:payments`."""
    return f"resilience:{kind}:{tenant_id}:{name}"


def _compile_each(
    tenant_id: Hashable, policies: Any, compile_one: Callable[[Any], Any], kind: str
) -> tuple[dict, dict]:
    """Compile every policy on its own: one that cannot (an exception class renamed by a deploy) is left out,
    logged and marked degraded in health, and never takes the tenant's other policies with it."""
    compiled, broken = {}, {}
    for policy in policies:
        component = policy_health_component(tenant_id, policy.name, kind)
        try:
            compiled[policy.name] = compile_one(policy)
        except (ImportError, TypeError, ValueError) as exc:
            broken[policy.name] = f"{exc.__class__.__name__}: {exc}"
            log.error("resilience policy %r of tenant %s cannot be compiled: %s", policy.name, tenant_id, exc)
            health.mark_degraded(component, f"policy cannot be compiled ({broken[policy.name]})")
        else:
            health.mark_ok(component)
    return compiled, broken


def _build_policies(tenant_id: Hashable) -> Policies:
    if not tenant_id:
        return Policies({}, {})
    breakers, broken = _compile_each(tenant_id, BreakerPolicy.objects.filter(tenant_id=tenant_id),
                                     BreakerConfig.from_policy, "policy")
    retries, _ = _compile_each(tenant_id, RetryPolicy.objects.filter(tenant_id=tenant_id),
                               RetryConfig.from_policy, "retry-policy")
    return Policies(breakers, retries, broken)


class PolicySnapshot(CompiledSnapshot[Policies]):
    """The compiled policies, and a say in the registry's shortcut: a change made here is seen at the next call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Called with a tenant id (None: every tenant) whenever this process drops compiled copies.
        self.on_drop: list[Callable[[Hashable | None], None]] = []

    def drop(self, key: Hashable) -> None:
        super().drop(key)
        for listener in self.on_drop:
            listener(key)

    def clear(self) -> None:
        super().clear()
        for listener in self.on_drop:
            listener(None)


policy_snapshot = PolicySnapshot("resilience", _build_policies)
policy_snapshot.follow(BreakerPolicy, key=attrgetter("tenant_id"))
policy_snapshot.follow(RetryPolicy, key=attrgetter("tenant_id"))
