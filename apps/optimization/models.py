"""Evidence (sampled requests), findings (one per diagnosed root cause) and load-test results."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.tenancy.models import Tenant, TenantOwned, TenantQuerySet

SYSTEM_ROUTE = "-"


class RequestSample(models.Model):
    """One sampled request: timings, SQL fingerprints, outgoing calls, body shape, hottest frames.

    Written in batches by the stats pipeline; tenant empty for platform traffic. Not tenant-facing: the
    analysis reads it and writes Findings, which are."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    taken_at = models.DateTimeField(db_index=True)
    route = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    status = models.PositiveSmallIntegerField()
    wall_ms = models.FloatField()
    cpu_ms = models.FloatField()
    db_ms = models.FloatField()
    db_queries = models.PositiveIntegerField()
    size = models.PositiveIntegerField(default=0)
    list_len = models.PositiveIntegerField(null=True, blank=True)
    body_hash = models.CharField(max_length=32, blank=True)
    cache_status = models.CharField(max_length=100, blank=True)
    # [{fp, sql, n, distinct, identical, ms, rows, params}] per SQL shape; see collector.Query.
    queries = models.JSONField(default=list)
    # [{host, ms, timeout_s, status, error}] per outgoing HTTP call.
    calls = models.JSONField(default=list)
    # [[function, samples]] of the stack sampler, hottest first.
    frames = models.JSONField(default=list)

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["route", "method", "taken_at"], name="optimization_sample_route")]

    def __str__(self) -> str:
        return f"{self.method} {self.route} @ {self.taken_at:%H:%M:%S}"


class Kind(models.TextChoices):
    N_PLUS_ONE = "n_plus_one"
    REPEATED_QUERY = "repeated_query"
    MISSING_INDEX = "missing_index"
    UNINDEXABLE_SEARCH = "unindexable_search"
    UNINDEXED_SORT = "unindexed_sort"
    UNBOUNDED_RESULT = "unbounded_result"
    UNCACHED_HOT_READ = "uncached_hot_read"
    CACHE_POOR_HIT_RATIO = "cache_poor_hit_ratio"
    DEPENDENCY_WITHOUT_TIMEOUT = "dependency_without_timeout"
    DEPENDENCY_FAILING_WITHOUT_BREAKER = "dependency_failing_without_breaker"
    BREAKER_FLAPPING = "breaker_flapping"
    CPU_HOT_PATH = "cpu_hot_path"
    RATELIMIT_SHADOW_IMPACT = "ratelimit_shadow_impact"
    RATELIMIT_NEVER_TRIGGERS = "ratelimit_never_triggers"
    CPU_SATURATION = "cpu_saturation"
    MEMORY_SATURATION = "memory_saturation"
    DB_CONNECTION_SATURATION = "db_connection_saturation"
    JOB_QUEUE_BACKLOG = "job_queue_backlog"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Status(models.TextChoices):
    OPEN = "open"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    APPLIED = "applied"
    VERIFIED = "verified"
    REGRESSED = "regressed"


class Finding(TenantOwned):
    """A diagnosed bottleneck: kind, where (route pattern or `-`), evidence, a plain-words recommendation,
    the estimated impact, the fix (a Bulwark policy to create or the statement/change to make) and its fate.

    Deduplicated on (tenant, kind, method, route, subject): a later analysis updates the row."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", null=True, blank=True,
                               help_text="Empty: platform traffic or the whole system.")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    route = models.CharField(max_length=255, help_text="The Django route pattern, or - for the whole system.")
    method = models.CharField(max_length=10, blank=True)
    subject = models.CharField(max_length=255, blank=True, help_text="The table, dependency, host or policy.")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    evidence = models.JSONField(default=dict)
    recommendation = models.TextField()
    estimated_impact = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    # {"policy": "cache"|"breaker"|"ratelimit", "data": {...}} for a fix Bulwark applies itself, or
    # {"statement": "..."} / {"change": "..."} for one a person makes.
    fix = models.JSONField(default=dict, blank=True)
    # What apply did (object label, pk, the previous values for a rollback) and the before/after figures.
    applied = models.JSONField(default=dict, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1, help_text="Analyses that found it.")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "method", "route", "subject"],
                                    name="optimization_finding_unique", condition=models.Q(tenant__isnull=False)),
            models.UniqueConstraint(fields=["kind", "method", "route", "subject"],
                                    name="optimization_finding_platform_unique",
                                    condition=models.Q(tenant__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.route}".replace("  ", " ")

    @property
    def applicable(self) -> bool:
        return "policy" in self.fix


class LoadTest(TenantOwned):
    """The figures of one `loadtest` job run, per step, beside the findings they verify."""

    job_run_id = models.BigIntegerField(null=True, blank=True)
    finding = models.ForeignKey(Finding, on_delete=models.SET_NULL, null=True, blank=True, related_name="loadtests")
    target = models.CharField(max_length=500)
    params = models.JSONField(default=dict)
    # [{step, concurrency|rate, requests, errors, throughput_rps, p50_ms, p95_ms, p99_ms, error_rate}]
    steps = models.JSONField(default=list)
    knee = models.JSONField(null=True, blank=True, help_text="The first step whose p95 crossed the threshold.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"load test {self.target} @ {self.created_at:%Y-%m-%d %H:%M}"
