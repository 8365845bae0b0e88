"""Job types of alerting: the evaluation loop (every EVALUATE_EVERY_S) and one delivery attempt."""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from rest_framework import serializers

from apps.alerting import evaluation, services
from apps.alerting.conf import alerting_settings
from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import DoNotRetry
from apps.jobs.registry import job_type


def evaluation_ticks(*, every_s: float, clock=time) -> Iterator[float]:
    """Wall-clock stamps of evaluation cycles, multiples of `every_s`, each yielded once it is due.

    A cycle is evaluated "as of" its tick, as Prometheus stamps a rule group's evaluation: stamped with the
    moment it happened to start instead, a cycle that starts a few ms late after one that started on time sees
    14.99 s of a 15 s `for` and fires one whole interval later. A cycle that overruns makes the next start at
    once, stamped with the latest tick already passed."""
    tick = math.floor(clock.time() / every_s) * every_s
    while True:
        yield tick
        now = clock.time()
        tick = max(tick + every_s, math.floor(now / every_s) * every_s)
        if tick > now:
            clock.sleep(tick - now)


def evaluation_loop(*, cycles: int, every_s: float, clock=time) -> list[dict]:
    """`cycles` evaluations of every tenant, on the `every_s` ticks of wall time."""
    results = []
    for tick in evaluation_ticks(every_s=every_s, clock=clock):
        started = clock.monotonic()
        result = evaluation.evaluate_all(now=datetime.fromtimestamp(tick, tz=UTC))
        results.append({**vars(result), "at": tick, "seconds": round(clock.monotonic() - started, 4)})
        if len(results) == cycles:
            return results
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
