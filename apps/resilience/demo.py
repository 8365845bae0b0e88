"""Demo breakers and a retry policy for a tenant (idempotent): the thresholds people know from the brief."""
from __future__ import annotations

from apps.resilience import services
from apps.resilience.models import BreakerPolicy, RetryPolicy

DEMO_BREAKERS = {
    "api": {"consecutive_failures": 5, "open_duration_s": 60.0, "description": "Outgoing HTTP APIs"},
    "database": {"consecutive_failures": 3, "open_duration_s": 30.0, "description": "The primary database"},
    "cache": {"consecutive_failures": 10, "open_duration_s": 15.0, "description": "The shared cache"},
    "payments": {
        "window_kind": "time", "window_size": 60, "failure_rate_threshold_pct": 50, "minimum_calls": 20,
        "slow_call_duration_ms": 1500, "slow_call_rate_threshold_pct": 80, "open_duration_s": 30.0,
        "open_duration_multiplier": 2.0, "max_open_duration_s": 300.0, "half_open_probes": 3, "timeout_s": 5.0,
        "max_concurrent": 20, "description": "Payment provider (rate window, slow calls, growing opens)",
    },
}
DEMO_RETRIES = {"default": {"max_attempts": 3, "backoff_base_ms": 100, "backoff_cap_ms": 2000, "budget_pct": 20}}


def seed(*, tenant, stdout=None) -> None:
    for name, data in DEMO_BREAKERS.items():
        if not BreakerPolicy.objects.for_tenant(tenant).filter(name=name).exists():
            services.policy_create(model=BreakerPolicy, tenant=tenant, data={"name": name, **data})
    for name, data in DEMO_RETRIES.items():
        if not RetryPolicy.objects.for_tenant(tenant).filter(name=name).exists():
            services.policy_create(model=RetryPolicy, tenant=tenant, data={"name": name, **data})
    if stdout is not None:
        stdout.write(f"resilience: {len(DEMO_BREAKERS)} breakers, {len(DEMO_RETRIES)} retry policy for {tenant.slug}")
