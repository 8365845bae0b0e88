"""Monitoring data: endpoints, their per-minute and per-hour rollups, system samples and thresholds."""
from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.audited import audited
from apps.tenancy.models import Tenant, TenantOwned, TenantQuerySet

UNMATCHED_ROUTE = "<unmatched>"
OTHER_ROUTE = "<other>"


class Endpoint(TenantOwned):
    """A (route pattern, method) of a tenant; tenant empty for platform traffic (no tenant resolved)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    route = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["route", "method"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "route", "method"], name="monitoring_endpoint_unique",
                                    condition=models.Q(tenant__isnull=False)),
            models.UniqueConstraint(fields=["route", "method"], name="monitoring_endpoint_platform_unique",
                                    condition=models.Q(tenant__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


class EndpointRollup(models.Model):
    """One minute (resolution_s 60) or one hour (3600) of an endpoint: counts, sums and the latency histogram."""

    class Resolution(models.IntegerChoices):
        MINUTE = 60, "minute"
        HOUR = 3600, "hour"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="rollups")
    resolution_s = models.PositiveIntegerField(choices=Resolution.choices)
    start = models.DateTimeField()
    count_1xx = models.BigIntegerField(default=0)
    count_2xx = models.BigIntegerField(default=0)
    count_3xx = models.BigIntegerField(default=0)
    count_4xx = models.BigIntegerField(default=0)
    count_5xx = models.BigIntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0)
    duration_ms_min = models.FloatField(null=True)
    duration_ms_max = models.FloatField(null=True)
    db_ms_sum = models.FloatField(default=0)
    queries_sum = models.BigIntegerField(default=0)
    bytes_sum = models.BigIntegerField(default=0)
    # {bucket index: count}; see apps.core.histogram.
    histogram = models.JSONField(default=dict)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "resolution_s", "start"], name="monitoring_rollup_unique"),
        ]
        indexes = [models.Index(fields=["resolution_s", "start"])]

    def __str__(self) -> str:
        return f"{self.endpoint} @ {self.start:%Y-%m-%d %H:%M} ({self.get_resolution_s_display()})"


class SystemSample(models.Model):
    """Host, store and worker figures taken by the `monitoring.sample` job (platform data, no tenant)."""

    host = models.CharField(max_length=255)
    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    disk_percent = models.FloatField()
    # Everything else: load, swap, disk and network I/O, processes' RSS, PostgreSQL, Redis, jobs.
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["host", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.host} @ {self.taken_at:%Y-%m-%d %H:%M:%S}"


def _pct():
    return [MinValueValidator(0), MaxValueValidator(100)]


@audited()
class Thresholds(TenantOwned):
    """Warning and critical levels of a tenant (one row; the brief's defaults until a tenant admin edits them)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    cpu_warning_pct = models.FloatField(default=75, validators=_pct())
    cpu_critical_pct = models.FloatField(default=90, validators=_pct())
    memory_warning_pct = models.FloatField(default=70, validators=_pct())
    memory_critical_pct = models.FloatField(default=85, validators=_pct())
    response_time_warning_ms = models.FloatField(default=500, validators=[MinValueValidator(0)])
    response_time_critical_ms = models.FloatField(default=1000, validators=[MinValueValidator(0)])
    error_rate_warning_pct = models.FloatField(default=2, validators=_pct())
    error_rate_critical_pct = models.FloatField(default=5, validators=_pct())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "thresholds"

    def __str__(self) -> str:
        return f"thresholds of {self.tenant}"

    DIMENSIONS = ("cpu", "memory", "response_time", "error_rate")

    def levels(self, dimension: str) -> tuple[float, float]:
        unit = "ms" if dimension == "response_time" else "pct"
        return getattr(self, f"{dimension}_warning_{unit}"), getattr(self, f"{dimension}_critical_{unit}")

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        for dimension in self.DIMENSIONS:
            warning, critical = self.levels(dimension)
            if warning is not None and critical is not None and warning > critical:
                unit = "ms" if dimension == "response_time" else "pct"
                errors[f"{dimension}_critical_{unit}"] = "Must be at least the warning level."
        if errors:
            raise ValidationError(errors)
