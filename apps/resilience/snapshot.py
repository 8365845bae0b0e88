"""The breaker and retry policies of each tenant, compiled into an in-process snapshot that follows both models.

Every save and delete of a `BreakerPolicy` or `RetryPolicy`, from any door (admin, its bulk "Delete selected",
API, ORM, shell), bumps the tenant's version after commit, so every process recompiles within the snapshot
interval; a process that drops a tenant's copy also tells its breakers to look their policy up again.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from operator import attrgetter

from apps.core.snapshot import CompiledSnapshot
from apps.resilience.machine import BreakerConfig
from apps.resilience.models import BreakerPolicy, RetryPolicy
from apps.resilience.retry import RetryConfig


@dataclass(frozen=True)
class Policies:
    breakers: dict[str, BreakerConfig]
    retries: dict[str, RetryConfig]


def _build_policies(tenant_id: Hashable) -> Policies:
    if not tenant_id:
        return Policies({}, {})
    return Policies(
        {p.name: BreakerConfig.from_policy(p) for p in BreakerPolicy.objects.filter(tenant_id=tenant_id)},
        {p.name: RetryConfig.from_policy(p) for p in RetryPolicy.objects.filter(tenant_id=tenant_id)},
    )


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
