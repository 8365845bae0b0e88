"""Job types of monitoring: the per-minute rollup (with hourly downsampling and sample retention) and the
system sample.

`monitoring.sample` runs every `SAMPLE_EVERY_S` (10 s) on every host: django-q2 schedules are minute-grained
and a queued run lands on whichever host's worker takes it, so the 10 s per-host cadence comes from
`sampler.HostSampler`, which the stats flusher of every Bulwark process (web and worker) ticks; the process
that claims its host's slot first runs the sample (see README). The job type runs the same service on
demand, on the host of the worker that takes it (never twice in one slot).
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.core.clock import SYSTEM_CLOCK
from apps.jobs.registry import job_type
from apps.monitoring import sampler, services

SAMPLE_RETENTION_DAYS = 7


@job_type("monitoring.rollup", timeout_s=300, max_attempts=1, interval_min=1)
def rollup(ctx, params: dict) -> dict:
    """Fold the tenant's (and the platform's) closed minutes into rows; hourly, downsample old minutes to
    hours and drop old system samples."""
    now = SYSTEM_CLOCK.time()
    result = {**services.rollup_fold(tenant=ctx.tenant, now=now)}
    # Platform-wide work: the run that claims this hour's slot does it, the others skip it.
    if services.slot_claim(name="rollup:retention", slot=int(now // 3600), ttl_s=3600):
        result["retention"] = services.rollup_downsample(now=timezone.now())
        result["samples_purged"] = services.samples_purge(
            older_than=timezone.now() - timedelta(days=SAMPLE_RETENTION_DAYS))
    return result


@job_type("monitoring.sample", timeout_s=60, max_attempts=1)
def sample(ctx, params: dict) -> dict:
    """Take this host's system, store and worker sample now (unless its current 10 s slot has one)."""
    taken = services.sample_take(host=sampler.HOST)
    return {"host": sampler.HOST, "samples": 1 if taken is not None else 0}
