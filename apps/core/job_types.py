"""The job type registry: `@job_type(...)` declares a typed, validated, retried job function.

    @job_type("cache.warm", params=WarmParams, timeout_s=300, max_attempts=3)
    def warm(ctx, params: dict) -> dict | None:
        ctx.progress(50, "half way")   # raises JobCancelled if an operator cancelled the run

Job modules are `apps/<app>/jobs.py`, imported by `JobsConfig.ready()`. The registry is a declaration only
(no database, no broker), so it lives in core: an app below jobs in the layering (audit) declares its job
types here without importing the jobs app, and the jobs app, which runs them, imports nobody above it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

# The role names of apps.tenancy.roles.Role (core sits below tenancy); the jobs app checks them at start-up.
OPERATOR = "operator"


class JobCancelled(Exception):  # noqa: N818 - a signal to stop, raised by ctx.progress, not an error
    """Raised inside a job by `ctx.progress()` once the run was asked to stop."""


class DoNotRetry(Exception):  # noqa: N818 - reads as what it asks for
    """Raise from a job to fail the run at once, without further attempts (bad data, missing object)."""


@dataclass(frozen=True)
class JobType:
    name: str
    func: Callable[..., dict | None]
    params: type[serializers.Serializer] | None
    timeout_s: int
    max_attempts: int
    queue: str
    description: str
    cron: str = ""
    interval_min: int | None = None
    # The least role a person needs to submit or retry a run of this type (destructive types ask for admin).
    submit_role: str = OPERATOR
    # False for idempotent types (ping, warm, retention): the outcome is committed without waiting for the WAL
    # flush. A database crash can then forget a success, and the run is executed again.
    durable_outcome: bool = True

    @property
    def periodic(self) -> bool:
        return bool(self.cron or self.interval_min)

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """The validated, JSON-ready parameters; raises DRF's ValidationError with field errors."""
        if not isinstance(params, dict):  # a schedule's JSON can be any value; a run's parameters are an object
            raise serializers.ValidationError(
                {"params": [f"Expected an object of parameters, got {type(params).__name__}."]})
        if self.params is None:
            if params:
                raise serializers.ValidationError({name: ["Unknown field."] for name in params})
            return {}
        serializer = self.params(data=params)
        serializer.is_valid(raise_exception=True)
        # Store what the serializer would give back (dates as ISO strings): a run's params are JSON.
        return dict(self.params(serializer.validated_data).data)

    def parse(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The typed parameters a job function receives (datetimes as datetimes), from a run's stored JSON."""
        if self.params is None:
            return {}
        serializer = self.params(data=stored)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


registry: dict[str, JobType] = {}


def job_type(
    name: str,
    *,
    params: type[serializers.Serializer] | None = None,
    timeout_s: int = 300,
    max_attempts: int = 3,
    queue: str = "default",
    cron: str = "",
    interval_min: int | None = None,
    submit_role: str = OPERATOR,
    durable_outcome: bool = True,
) -> Callable[[Callable], Callable]:
    """Register a job function. `cron` or `interval_min` declare a platform schedule (run per tenant)."""
    if max_attempts < 1:
        raise ValueError(f"job type {name!r}: max_attempts must be at least 1")
    if timeout_s < 1:
        raise ValueError(f"job type {name!r}: timeout_s must be at least 1")

    def register(func: Callable) -> Callable:
        existing = registry.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"job type {name!r} is registered twice ({existing.func.__module__} and {func.__module__})")
        registry[name] = JobType(
            name=name, func=func, params=params, timeout_s=timeout_s, max_attempts=max_attempts, queue=queue,
            description=(func.__doc__ or "").strip().split("\n")[0], cron=cron, interval_min=interval_min,
            submit_role=submit_role, durable_outcome=durable_outcome,
        )
        return func

    return register


def get_type(name: str) -> JobType:
    try:
        return registry[name]
    except KeyError:
        raise serializers.ValidationError({"type": [f"Unknown job type {name!r}."]}) from None
