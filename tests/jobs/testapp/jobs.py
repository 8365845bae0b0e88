"""Job types used by the jobs tests, in the test process and in the qcluster subprocesses they start."""
from __future__ import annotations

import time

from rest_framework import serializers

from apps.audit.services import record
from apps.core.api.serializers import StrictSerializer
from apps.core.job_types import DoNotRetry, job_type


class EchoParams(StrictSerializer):
    count = serializers.IntegerField(min_value=1, max_value=10)
    label = serializers.CharField(max_length=20, required=False, default="x")
    mode = serializers.ChoiceField(choices=["fast", "slow"], required=False, default="fast")


@job_type("test.noop", timeout_s=10, max_attempts=1)
def noop(ctx, params: dict) -> None:
    """Does nothing (throughput benchmark)."""
    return None


@job_type("test.echo", params=EchoParams, timeout_s=10, max_attempts=2)
def echo(ctx, params: dict) -> dict:
    """Returns its parameters."""
    ctx.progress(50, "echoing")
    return {"echo": params, "tenant": ctx.tenant.slug}


@job_type("test.flaky", timeout_s=10, max_attempts=3)
def flaky(ctx, params: dict) -> None:
    """Always raises a retryable error."""
    raise RuntimeError("dependency unavailable")


@job_type("test.permanent", timeout_s=10, max_attempts=3)
def permanent(ctx, params: dict) -> None:
    """Raises DoNotRetry."""
    raise DoNotRetry("the object is gone")


class StepsParams(StrictSerializer):
    steps = serializers.IntegerField(min_value=1, max_value=1000)
    step_s = serializers.FloatField(min_value=0, max_value=5)


@job_type("test.steps", params=StepsParams, timeout_s=20, max_attempts=3)
def steps(ctx, params: dict) -> dict:
    """Reports progress after each of `steps` sleeps of `step_s`."""
    for step in range(params["steps"]):
        time.sleep(params["step_s"])
        ctx.progress(int(100 * (step + 1) / params["steps"]), f"step {step + 1}")
    return {"steps": params["steps"]}


@job_type("test.audits", timeout_s=10, max_attempts=1)
def audits(ctx, params: dict) -> None:
    """Writes one audit event, to see which actor a job's events carry."""
    record(action="test.job_did_something", obj=ctx.run)


@job_type("test.times_out", timeout_s=1, max_attempts=2)
def times_out(ctx, params: dict) -> None:
    """Raises what django-q2's SIGALRM timeout handler raises."""
    from django_q.exceptions import TimeoutException

    raise TimeoutException("Task exceeded maximum timeout value (1 seconds)")


@job_type("test.bad_result", timeout_s=10, max_attempts=3)
def bad_result(ctx, params: dict) -> object:
    """Returns something that is not JSON."""
    return {"when": object()}
