"""Job types of monitoring: the per-minute rollup (with downsampling) and the system sampler."""
from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from apps.core import stats
from apps.core.api.serializers import StrictSerializer
from apps.jobs.registry import job_type
from apps.monitoring import sampler, services
from apps.monitoring.conf import monitoring_settings

SAMPLE_RETENTION_DAYS = 7


@job_type("monitoring.rollup", timeout_s=300, max_attempts=1, interval_min=1)
def rollup(ctx, params: dict) -> dict:
    """Fold the tenant's (and the platform's) closed minutes into rows; downsample old minutes to hours."""
    folded = services.rollup_fold(tenant=ctx.tenant)
    now = timezone.now()
    result = {**folded}
    # Downsampling is platform-wide: the run that claims this hour's slot does it, the others skip it.
    if services.sample_slot_claim(host="rollup", slot=int(time.time() // 3600), ttl_s=3600):
        result["retention"] = services.rollup_downsample(now=now)
    return result


class SampleParams(StrictSerializer):
    repeat = serializers.IntegerField(min_value=1, max_value=60, required=False,
                                      help_text="Samples to take, SAMPLE_EVERY_S apart; default: a minute's worth.")


@job_type("monitoring.sample", params=SampleParams, timeout_s=120, max_attempts=1, interval_min=1)
def sample(ctx, params: dict) -> dict:
    """Take this host's system, store and worker samples every SAMPLE_EVERY_S through the minute."""
    stats.pipeline.ensure_started()  # this worker reports its own RSS from now on
    every_s = int(monitoring_settings.SAMPLE_EVERY_S)
    # A platform schedule submits one run per tenant: one run per host and minute samples, the rest return.
    if not params.get("repeat") and not services.sample_slot_claim(
            host=f"{sampler.HOST}:runner", slot=int(time.time() // 60), ttl_s=55):
        return {"host": sampler.HOST, "samples": 0, "skipped": True}
    repeat = params.get("repeat") or max(1, 60 // every_s)
    taken = 0
    for i in range(repeat):
        slot_start = time.time()
        if services.sample_slot_claim(host=sampler.HOST, slot=int(slot_start // every_s), ttl_s=every_s * 2):
            services.sample_record(host=sampler.HOST, figures=sampler.take_sample())
            taken += 1
        ctx.progress(int(100 * (i + 1) / repeat), f"{taken} samples")
        if i + 1 < repeat:
            time.sleep(max(0.0, every_s - (time.time() - slot_start)))
    purged = services.samples_purge(older_than=timezone.now() - timedelta(days=SAMPLE_RETENTION_DAYS))
    return {"host": sampler.HOST, "samples": taken, "purged": purged}
