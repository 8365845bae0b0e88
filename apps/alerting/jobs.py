"""Job types of alerting: the evaluation loop (every EVALUATE_EVERY_S) and one delivery attempt."""
from __future__ import annotations

import time

from django.utils import timezone
from rest_framework import serializers

from apps.alerting import evaluation, services
from apps.alerting.conf import alerting_settings
from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import DoNotRetry
from apps.jobs.registry import job_type


def evaluation_loop(*, cycles: int, every_s: float, clock=time) -> list[dict]:
    """`cycles` evaluations of every tenant, `every_s` apart (a cycle that overruns starts the next at once)."""
    results = []
    for i in range(cycles):
        started = clock.monotonic()
        result = evaluation.evaluate_all(now=timezone.now())
        results.append({**vars(result), "seconds": round(clock.monotonic() - started, 4)})
        if i + 1 < cycles:
            clock.sleep(max(0.0, every_s - (clock.monotonic() - started)))
    return results


@job_type("alerting.evaluate", timeout_s=120, max_attempts=1, interval_min=1, durable_outcome=False)
def evaluate(ctx, params: dict) -> dict:
    """Evaluate every tenant's rules every EVALUATE_EVERY_S through the minute (the schedule's resolution)."""
    from apps.monitoring.services import slot_claim

    # The platform schedule submits one run per tenant each minute; the first to claim the minute evaluates
    # every tenant (one read per kind and tenant per cycle), the others return.
    if not slot_claim(name="alerting:evaluate", slot=int(time.time() // 60), ttl_s=90):
        return {"skipped": True}
    every_s = int(alerting_settings.EVALUATE_EVERY_S)
    results = evaluation_loop(cycles=max(1, 60 // every_s), every_s=every_s)
    return {"cycles": len(results), "transitions": sum(r["transitions"] for r in results),
            "notifications": sum(r["notifications"] for r in results),
            "max_cycle_s": max(r["seconds"] for r in results)}


class DeliverParams(StrictSerializer):
    notification = serializers.IntegerField(min_value=1)
    channel = serializers.IntegerField(min_value=1)


@job_type("alerting.deliver", params=DeliverParams, timeout_s=60,
          max_attempts=alerting_settings.DELIVERY_MAX_ATTEMPTS)
def deliver(ctx, params: dict) -> dict:
    """Send one notification to one channel; a failed attempt is logged and retried with backoff."""
    try:
        delivery = services.delivery_attempt(tenant=ctx.tenant, notification_id=params["notification"],
                                             channel_id=params["channel"], attempt=ctx.run.attempts)
    except LookupError as exc:
        raise DoNotRetry(str(exc)) from exc
    return {"delivery": delivery.pk, "response_code": delivery.response_code, "latency_ms": delivery.latency_ms}
