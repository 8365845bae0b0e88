"""Job types of optimization: the scheduled analysis (per tenant) and load tests."""
from __future__ import annotations

import asyncio

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.job_types import DoNotRetry, job_type
from apps.optimization import loadtest, services
from apps.optimization.conf import optimization_settings as conf
from apps.optimization.models import Finding, LoadTest


class AnalyzeParams(StrictSerializer):
    window_s = serializers.IntegerField(min_value=60, max_value=7 * 86400, required=False)


ANALYZE_EVERY_MIN = 5
clock: Clock = SYSTEM_CLOCK  # reads the platform slot's time (a test moves it to a slot of its own)


@job_type("optimization.analyze", params=AnalyzeParams, timeout_s=600, max_attempts=1,
          interval_min=ANALYZE_EVERY_MIN)
def analyze(ctx, params: dict) -> dict:
    """Diagnose the tenant's sampled traffic; store findings; re-measure applied fixes; purge old samples.
    The schedule submits one run per tenant: the first to claim the tick also diagnoses the platform's
    traffic (no tenant) and the whole system (saturation, route `-`), once per tick."""
    from apps.monitoring.services import slot_claim

    found = services.analyze(window_s=params.get("window_s"), tenant=ctx.tenant, progress=ctx.progress)
    result = {"findings": len(found), "kinds": sorted({c.kind for c in found})}
    every_s = ANALYZE_EVERY_MIN * 60
    if slot_claim(name="optimization:platform", slot=int(clock.time() // every_s), ttl_s=every_s):
        platform = services.analyze(window_s=params.get("window_s"), tenant=services.PLATFORM)
        result["platform"] = {"findings": len(platform), "kinds": sorted({c.kind for c in platform})}
        result["samples_purged"] = services.findings_purge()
    return result


class StepUpSerializer(StrictSerializer):
    start = serializers.IntegerField(min_value=1)
    step = serializers.IntegerField(min_value=1)
    max = serializers.IntegerField(min_value=1)
    p95_threshold_ms = serializers.FloatField(min_value=1)


class LoadTestParams(StrictSerializer):
    target = serializers.URLField(help_text="Base URL; must be on OPTIMIZATION.LOADTEST_ALLOWED_HOSTS "
                                            "(default: this server on loopback).")
    paths = serializers.ListField(child=serializers.RegexField(r"^/[^\s]{0,500}$"), min_length=1, max_length=50,
                                  default=["/"], help_text="The request mix: paths picked at random.")
    method = serializers.ChoiceField(choices=["GET", "HEAD", "POST"], default="GET")
    concurrency = serializers.IntegerField(min_value=1, default=10)
    rate = serializers.FloatField(min_value=0.1, required=False, help_text="Requests per second (all users).")
    duration_s = serializers.FloatField(min_value=1, default=10, help_text="Of each step.")
    step_up = StepUpSerializer(required=False, help_text="Raise concurrency step by step until p95 crosses.")
    auth = serializers.ChoiceField(choices=["none", "viewer_token"], default="none",
                                   help_text="viewer_token: a token of the tenant made for the run, revoked after.")
    finding = serializers.IntegerField(required=False, help_text="The finding this load test verifies.")

    def validate_target(self, value: str) -> str:
        if not loadtest.target_allowed(value):
            raise serializers.ValidationError("Target not on the load-test allowlist (default: this server only).")
        return value

    def validate(self, attrs):
        errors = {}
        levels = self.levels(attrs)
        if max(levels) > conf.LOADTEST_MAX_CONCURRENCY:
            errors["concurrency"] = f"At most {conf.LOADTEST_MAX_CONCURRENCY} concurrent users."
        if len(levels) > 50:
            errors["step_up"] = "At most 50 steps."
        if attrs.get("duration_s", 10) * len(levels) > conf.LOADTEST_MAX_DURATION_S:
            errors["duration_s"] = f"All steps together may last at most {conf.LOADTEST_MAX_DURATION_S} s."
        if attrs.get("rate") and attrs["rate"] > conf.LOADTEST_MAX_RATE:
            errors["rate"] = f"At most {conf.LOADTEST_MAX_RATE} requests per second."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @staticmethod
    def levels(attrs: dict) -> list[int]:
        step_up = attrs.get("step_up")
        if not step_up:
            return [attrs.get("concurrency", 10)]
        if step_up["max"] < step_up["start"]:
            raise serializers.ValidationError({"step_up": ["max must be at least start."]})
        return list(range(step_up["start"], step_up["max"] + 1, step_up["step"]))


@job_type("loadtest", params=LoadTestParams, timeout_s=540, max_attempts=1)
def run_loadtest(ctx, params: dict) -> dict:
    """Run a bounded load test against an allowlisted target; store throughput, p50/p95/p99, error rate."""
    from apps.tenancy.services import token_create, token_revoke

    if not loadtest.target_allowed(params["target"]):  # the allowlist may have changed since submission
        raise DoNotRetry("target not on the load-test allowlist")
    finding = None
    if params.get("finding"):
        finding = Finding.objects.for_tenant(ctx.tenant).filter(pk=params["finding"]).first()
    headers, token = {}, None
    if params["auth"] == "viewer_token":
        token, plaintext = token_create(tenant=ctx.tenant, name=f"loadtest-{ctx.run.pk}", role="viewer")
        headers["Authorization"] = f"Bearer {plaintext}"
    step_up = params.get("step_up")
    try:
        result = asyncio.run(loadtest.run(
            target=params["target"], paths=params["paths"], method=params["method"],
            levels=LoadTestParams.levels(params), rate=params.get("rate"), step_duration_s=params["duration_s"],
            p95_threshold_ms=step_up["p95_threshold_ms"] if step_up else None, headers=headers,
            progress=ctx.progress))
    finally:
        if token is not None:
            token_revoke(token=token)
    LoadTest.objects.create(tenant=ctx.tenant, job_run_id=ctx.run.pk, finding=finding, target=params["target"],
                            params={k: v for k, v in params.items()}, steps=result["steps"], knee=result["knee"])
    return result
