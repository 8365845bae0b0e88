"""Breaker and retry policies per dependency, the transition history, and the per-minute dependency scorecard."""
from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.core.audited import audited
from apps.core.validators import validate_finite
from apps.tenancy.models import TenantOwned

NAME_VALIDATOR = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", "Letters, digits and _ . : - only.")
PERCENT = [MinValueValidator(1), MaxValueValidator(100)]
# A time window may hold any number of calls, but a threshold no window reaches only disables the breaker
# quietly; this bound turns such a typo into a field error.
MAX_CALLS = 100_000
DECIMAL_PERCENT = [MinValueValidator(Decimal("0.01")), MaxValueValidator(100)]
WEEK_S = 7 * 24 * 3600


def validate_exception_paths(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("A list of dotted paths of exception classes, e.g. [\"httpx.ConnectError\"].")
    for path in value:
        try:
            cls = import_string(path)
        except ImportError:
            raise ValidationError(f"{path!r} cannot be imported.") from None
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ValidationError(f"{path!r} is not an exception class.")


def validate_statuses(value) -> None:
    if not isinstance(value, list) or not all(isinstance(s, int) and 100 <= s <= 599 for s in value):
        raise ValidationError("A list of HTTP status codes between 100 and 599.")


class ForcedState(models.TextChoices):
    NONE = "none", "none (automatic)"
    FORCED_OPEN = "forced_open", "forced open (reject every call)"
    FORCED_CLOSED = "forced_closed", "forced closed (permit every call, count them)"
    DISABLED = "disabled", "disabled (pass through, count nothing)"
    METRICS_ONLY = "metrics_only", "metrics only (figures reset on entering; count, never transition or reject)"


class HalfOpenMode(models.TextChoices):
    FIRST_FAILURE = "first_failure", "first failure reopens (each probe judged as it reports)"
    RATES = "rates", "rates over all probes (resilience4j: judged once every probe has reported)"


class WindowKind(models.TextChoices):
    COUNT = "count", "last N calls"
    TIME = "time", "last N seconds"


class BulkheadScope(models.TextChoices):
    PROCESS = "process", "per process"
    CLUSTER = "cluster", "cluster-wide (shared store)"


def default_failure_statuses() -> list[int]:
    return [500, 502, 503, 504]


@audited(exclude=("forced_state", "updated_at"))
class BreakerPolicy(TenantOwned):
    """How calls to one dependency are judged, and when they stop being made.

    `forced_state` is changed only by the operator actions (each recorded as its own audit event),
    which is why the automatic audit leaves it out.
    """

    name = models.CharField(max_length=100, validators=[NAME_VALIDATOR], help_text="The dependency, e.g. payments.")
    description = models.CharField(max_length=200, blank=True)
    window_kind = models.CharField(max_length=8, choices=WindowKind.choices, default=WindowKind.COUNT)
    window_size = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Calls (count window) or seconds (time window).",
    )
    failure_rate_threshold_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("50"), validators=DECIMAL_PERCENT,
        help_text="Open when the failure rate reaches this percentage (0.01 to 100, two decimals).",
    )
    slow_call_duration_ms = models.PositiveIntegerField(
        default=2_000, validators=[MinValueValidator(1)],
        help_text="A call slower than this (strictly) is slow; one of exactly this duration is not.",
    )
    slow_call_rate_threshold_pct = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=DECIMAL_PERCENT,
        help_text="Empty: slow calls are counted but never open the breaker.",
    )
    minimum_calls = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_CALLS)],
        help_text="No rate is computed (nor can open) before the window holds this many calls; in a count "
                  "window it is capped to the window size, as resilience4j does.",
    )
    consecutive_failures = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_CALLS)],
        help_text="Set to use the simple mode instead of rates: open after this many failures in a row.",
    )
    open_duration_s = models.FloatField(
        default=60.0, validators=[validate_finite, MinValueValidator(0.01), MaxValueValidator(WEEK_S)]
    )
    open_duration_multiplier = models.FloatField(
        default=1.0, validators=[validate_finite, MinValueValidator(1.0), MaxValueValidator(10.0)],
        help_text="Each repeated open without a successful close multiplies the open duration by this.",
    )
    max_open_duration_s = models.FloatField(
        default=600.0, validators=[validate_finite, MinValueValidator(0.01), MaxValueValidator(WEEK_S)]
    )
    half_open_probes = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Calls let through in half-open, across every process.",
    )
    half_open_mode = models.CharField(
        max_length=16, choices=HalfOpenMode.choices, default=HalfOpenMode.FIRST_FAILURE,
        help_text="first_failure: one failed probe opens again, all probes succeeding close. rates (resilience4j): "
                  "the probes are a fresh window; once all have reported, the breaker opens again if their failure "
                  "or slow-call rate reaches its threshold, else closes. An ignored outcome gives its ticket back.",
    )
    max_wait_in_half_open_s = models.FloatField(
        null=True, blank=True, validators=[validate_finite, MinValueValidator(0.01), MaxValueValidator(WEEK_S)],
        help_text="Empty: half-open waits for its probes for ever. Else open again after this long without a verdict.",
    )
    automatic_transition = models.BooleanField(
        default=False,
        help_text="Move from open to half-open when the open duration ends (within the sync interval), "
                  "not at the next call.",
    )
    failure_exceptions = models.JSONField(
        default=list, blank=True, validators=[validate_exception_paths],
        help_text="Exceptions that count as failures; empty means every exception.",
    )
    ignored_exceptions = models.JSONField(
        default=list, blank=True, validators=[validate_exception_paths],
        help_text="Exceptions that count as neither success nor failure.",
    )
    failure_statuses = models.JSONField(default=default_failure_statuses, blank=True, validators=[validate_statuses])
    ignored_statuses = models.JSONField(default=list, blank=True, validators=[validate_statuses])
    timeout_s = models.FloatField(
        null=True, blank=True, validators=[validate_finite, MinValueValidator(0.001), MaxValueValidator(3600)]
    )
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Bulkhead: empty means unlimited."
    )
    bulkhead_scope = models.CharField(max_length=8, choices=BulkheadScope.choices, default=BulkheadScope.PROCESS)
    forced_state = models.CharField(max_length=16, choices=ForcedState.choices, default=ForcedState.NONE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "breaker policies"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="resilience_breaker_tenant_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if (
            self.max_open_duration_s is not None and self.open_duration_s is not None
            and self.max_open_duration_s < self.open_duration_s
        ):
            errors["max_open_duration_s"] = "Must be at least the open duration."
        overlap = set(self.failure_statuses or []) & set(self.ignored_statuses or [])
        if overlap:
            errors["ignored_statuses"] = f"Also listed as failures: {sorted(overlap)}."
        if errors:
            raise ValidationError(errors)


@audited(exclude=("updated_at",))
class RetryPolicy(TenantOwned):
    """Retries with exponential backoff and full jitter, throttled by a budget so they cannot multiply an outage."""

    name = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    max_attempts = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(10)])
    backoff_base_ms = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    backoff_cap_ms = models.PositiveIntegerField(default=2_000, validators=[MinValueValidator(1)])
    attempt_timeout_ms = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    retry_exceptions = models.JSONField(
        default=list, blank=True, validators=[validate_exception_paths],
        help_text="Exceptions worth retrying; empty means every exception except a breaker's refusal.",
    )
    retry_statuses = models.JSONField(default=list, blank=True, validators=[validate_statuses])
    budget_pct = models.PositiveSmallIntegerField(
        default=20, validators=[MaxValueValidator(100)],
        help_text="Retries may add at most this % to the calls of the last 10 s (0: no budget, no limit).",
    )
    budget_min_retries_per_s = models.PositiveSmallIntegerField(
        default=1, help_text="Retries always allowed per second whatever the traffic, so a quiet dependency can retry.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "retry policies"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="resilience_retry_tenant_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.backoff_base_ms and self.backoff_cap_ms and self.backoff_cap_ms < self.backoff_base_ms:
            errors["backoff_cap_ms"] = "Must be at least the backoff base."
        if (
            self.budget_pct == 0 and (self.max_attempts or 1) > 1 and self.attempt_timeout_ms
            and self.backoff_cap_ms and self.attempt_timeout_ms >= self.backoff_cap_ms
        ):
            errors["attempt_timeout_ms"] = (
                "With no retry budget, an attempt timeout at or above the backoff cap lets slow retries pile up; "
                "set budget_pct or lower the timeout."
            )
        if errors:
            raise ValidationError(errors)


class BreakerEvent(TenantOwned):
    """One transition of a breaker, with the window figures that caused it."""

    name = models.CharField(max_length=100, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=200)
    calls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    slow_calls = models.PositiveIntegerField(default=0)
    failure_rate_pct = models.FloatField(null=True, blank=True)
    slow_rate_pct = models.FloatField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "name", "-at"])]

    def __str__(self) -> str:
        return f"{self.name}: {self.from_state} → {self.to_state}"


class DependencyMinute(TenantOwned):
    """The scorecard of one dependency for one minute; `histogram` maps a log bucket to a count of calls."""

    name = models.CharField(max_length=100)
    minute = models.DateTimeField(db_index=True)
    calls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    ignored = models.PositiveIntegerField(
        default=0, help_text="Calls judged neither way: ignored outcomes, and probe reports after their ticket expired."
    )
    slow_calls = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0.0)
    cost_sum = models.FloatField(default=0.0)
    cost_calls = models.PositiveIntegerField(default=0)
    histogram = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-minute", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name", "minute"], name="resilience_depminute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.minute:%Y-%m-%d %H:%M}"
