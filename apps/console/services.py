"""The console's operator actions: thin calls of the owning apps' services, then a live event so every
console of the tenant shows the change at once."""
from __future__ import annotations

from apps.core import live
from apps.core.errors import NotFoundError
from apps.resilience import services as resilience
from apps.resilience.models import BreakerPolicy, ForcedState
from apps.tenancy.models import Tenant

BREAKER_ACTIONS = {
    "force_open": ("Force open", ForcedState.FORCED_OPEN),
    "force_close": ("Force closed", ForcedState.FORCED_CLOSED),
    "disable": ("Disable", ForcedState.DISABLED),
    "metrics_only": ("Metrics only", ForcedState.METRICS_ONLY),
    "reset": ("Reset", None),
}


def breaker_action(*, tenant: Tenant, name: str, action: str) -> BreakerPolicy:
    """Force, disable or reset the tenant's breaker `name` (audited by resilience's services)."""
    if action not in BREAKER_ACTIONS:
        raise NotFoundError(f"No breaker action {action!r}.")
    policy = BreakerPolicy.objects.for_tenant(tenant).filter(name=name).first()
    if policy is None:
        raise NotFoundError(f"No breaker named {name!r}.")
    forced_state = BREAKER_ACTIONS[action][1]
    if forced_state is None:
        resilience.breaker_reset(policy=policy)
    else:
        resilience.breaker_force(policy=policy, forced_state=forced_state)
    live.publish(tenant.pk, f"breaker.{action}", {"name": name, "action": action})
    return policy
