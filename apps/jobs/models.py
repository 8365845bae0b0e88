"""Job runs (one row per submission, with status, progress and outcome) and the periodic schedules."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from apps.core.audited import audited
from apps.tenancy.models import Tenant, TenantOwned, TenantQuerySet


class JobRun(TenantOwned):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.RETRYING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    type = models.CharField(max_length=100, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    submitted_by_kind = models.CharField(max_length=16, blank=True)
    submitted_by_id = models.CharField(max_length=64, blank=True)
    submitted_by_display = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Delivery and ownership: when the broker message was last sent, when a retry is due, and the
    # lease the running attempt keeps alive with its heartbeat.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True, help_text="The django-q2 task id of the last delivery.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker of the last attempt.")

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "type", "queued_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="jobs_run_tenant_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="jobs_run_progress_lte_100"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.status})"

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


@audited(exclude=("last_synced_at",))
class JobSchedule(models.Model):
    """A periodic submission of one job type, for one tenant or (tenant empty) for every active tenant.

    Not `TenantOwned` because platform schedules have no tenant; reads still go through `for_tenant`.
    """

    name = models.CharField(max_length=120)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: a platform schedule, run once per active tenant.",
    )
    type = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    cron = models.CharField(max_length=100, blank=True, help_text="A cron expression, e.g. '30 3 * * *' (UTC).")
    interval_min = models.PositiveIntegerField(null=True, blank=True, help_text="Or: every N minutes.")
    enabled = models.BooleanField(default=True)
    declared = models.BooleanField(
        default=False, editable=False, help_text="Created from a job type's declared schedule."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="jobs_schedule_tenant_name"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(tenant__isnull=True), name="jobs_schedule_platform_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant or 'platform'})"

    @property
    def q2_name(self) -> str:
        return f"bulwark.jobs.schedule:{self.pk}"

    def clean(self) -> None:
        from apps.jobs.registry import registry

        errors = {}
        if bool(self.cron) == bool(self.interval_min):
            errors["cron"] = "Give either a cron expression or an interval in minutes, not both nor neither."
        if self.cron:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                errors["cron"] = f"{self.cron!r} is not a valid cron expression."
        if self.type and self.type not in registry:
            errors["type"] = f"Unknown job type {self.type!r}."
        if errors:
            raise ValidationError(errors)
