"""The console's job type: a short job that reports progress in steps, so the demo's job queue moves."""
from __future__ import annotations

import time

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import job_type


class DemoWorkParams(StrictSerializer):
    steps = serializers.IntegerField(min_value=1, max_value=100, default=10)
    step_s = serializers.FloatField(min_value=0.0, max_value=10.0, default=1.0)


@job_type("console.demo_work", params=DemoWorkParams, timeout_s=300, max_attempts=1, durable_outcome=False)
def demo_work(ctx, params: dict) -> dict:
    """Sleeps `steps` × `step_s` seconds, reporting progress after each step (the demo's moving progress bars)."""
    for step in range(1, params["steps"] + 1):
        time.sleep(params["step_s"])
        ctx.progress(round(100 * step / params["steps"]), f"step {step} of {params['steps']}")
    return {"steps": params["steps"]}
