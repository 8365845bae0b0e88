"""Job runs (one row per submission, with status, progress and outcome) and the periodic schedules."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.utils import timezone

from apps.core.audited import audited
from apps.tenancy.models import Tenant, TenantOwned, TenantQuerySet

# The worker's hot writes as fixed statements with bound parameters. Each is one round trip, and on PostgreSQL
# `set_config('synchronous_commit', %(sync)s, true)` (SET LOCAL inside the statement) lets it commit without
# waiting for the WAL flush when `sync` is 'off'; None (inside a caller's transaction) keeps the current mode.
# UPDATE ... RETURNING needs SQLite >= 3.35; SQLite cannot return the joined tenant, which then loads lazily.
CLAIM_SQL_POSTGRESQL = """
UPDATE bulwark_jobs_jobrun AS run
   SET status = %(running)s, attempts = run.attempts + 1, started_at = %(now)s, worker = %(worker)s,
       task_id = %(task_id)s, lease_expires_at = %(lease)s, next_attempt_at = NULL,
       cluster = %(cluster)s
  FROM bulwark_tenancy_tenant AS tenant,
       (SELECT set_config('synchronous_commit', COALESCE(%(sync)s, current_setting('synchronous_commit')), true))
       AS commit_mode
 WHERE run.id = %(pk)s AND run.status = %(queued)s AND tenant.id = run.tenant_id
RETURNING run.*, row_to_json(tenant.*) AS claimed_tenant
"""
CLAIM_SQL = """
UPDATE bulwark_jobs_jobrun
   SET status = %(running)s, attempts = attempts + 1, started_at = %(now)s, worker = %(worker)s,
       task_id = %(task_id)s, lease_expires_at = %(lease)s, next_attempt_at = NULL,
       cluster = %(cluster)s
 WHERE id = %(pk)s AND status = %(queued)s
RETURNING *
"""
# Renew the lease (fenced by attempt), optionally record progress, and read the operator's requests. The
# SELECT sees the row as before the UPDATE, which touches neither cancel_requested nor terminate_requested_at.
RENEW_SQL_POSTGRESQL = """
WITH renewed AS (
    UPDATE bulwark_jobs_jobrun
       SET lease_expires_at = %(lease)s, progress = COALESCE(%(progress)s, progress),
           progress_message = COALESCE(%(message)s, progress_message)
      FROM (SELECT set_config('synchronous_commit', COALESCE(%(sync)s, current_setting('synchronous_commit')),
                              true)) AS commit_mode
     WHERE id = %(pk)s AND status = %(running)s AND attempts = %(attempts)s
    RETURNING 1
)
SELECT cancel_requested, terminate_requested_at FROM bulwark_jobs_jobrun WHERE id = %(pk)s
"""
# Many attempts' outcomes in one statement and one commit (the worker's group commit), each fenced by its
# attempt, with one JobAttempt row per outcome that took effect. Arrays keep it one fixed statement.
OUTCOMES_SQL_POSTGRESQL = """
WITH outcome AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[], %(statuses)s::text[], %(results)s::text[],
                         %(errors)s::text[], %(tracebacks)s::text[], %(ended)s::timestamptz[],
                         %(finished)s::timestamptz[], %(next)s::timestamptz[], %(ended_how)s::text[])
        AS o(id, attempts, status, result, error, traceback, ended_at, finished_at, next_attempt_at, ended_how)
), done AS (
    UPDATE bulwark_jobs_jobrun AS run
       SET status = outcome.status, result = COALESCE(outcome.result::jsonb, run.result),
           error = outcome.error, traceback = outcome.traceback, finished_at = outcome.finished_at,
           next_attempt_at = outcome.next_attempt_at, lease_expires_at = NULL,
           progress = CASE WHEN outcome.status = %(succeeded)s THEN 100 ELSE run.progress END
      FROM outcome,
           (SELECT set_config('synchronous_commit', COALESCE(%(sync)s, current_setting('synchronous_commit')),
                              true)) AS commit_mode
     WHERE run.id = outcome.id AND run.status = %(running)s AND run.attempts = outcome.attempts
    RETURNING run.id, run.attempts, run.worker, run.started_at, outcome.ended_at, outcome.status,
              outcome.ended_how, outcome.error, outcome.traceback
)
INSERT INTO bulwark_jobs_jobattempt (run_id, number, worker, started_at, ended_at, outcome, ended_how, error,
                                     traceback)
SELECT id, attempts, worker, started_at, ended_at, status, ended_how, error, traceback FROM done
RETURNING run_id
"""


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, to be written on its run (fenced by `attempts`) and kept as a JobAttempt."""

    run_pk: int
    attempts: int
    status: str  # the run's status after the attempt: succeeded, retrying, failed, cancelled
    ended_how: str  # a JobAttempt.EndedHow
    ended_at: datetime
    result_json: str | None = None  # JSON text; None keeps the run's result
    error: str = ""
    traceback: str = ""
    next_attempt_at: datetime | None = None

    @property
    def finished_at(self) -> datetime | None:
        return None if self.status == JobRun.Status.RETRYING else self.ended_at


class JobRunQuerySet(TenantQuerySet):
    def claim(self, *, pk: int, worker: str, task_id: str, now: datetime, lease_until: datetime,
              cluster: str = "") -> JobRun | None:
        """Take a queued run: one conditional UPDATE that returns the row (and on PostgreSQL its tenant),
        committed without waiting for the WAL flush (a lost claim leaves the run queued: delivered again)."""
        connection = connections[self.db]
        params = {"pk": pk, "queued": JobRun.Status.QUEUED, "running": JobRun.Status.RUNNING, "now": now,
                  "worker": worker[:200], "task_id": task_id[:64], "lease": lease_until,
                  "cluster": cluster[:200],
                  "sync": None if connection.in_atomic_block else "off"}
        postgresql = connection.vendor == "postgresql"
        # list(): SQLite finishes (and commits) an UPDATE ... RETURNING only once its rows are all read.
        runs = list(self.raw(CLAIM_SQL_POSTGRESQL if postgresql else CLAIM_SQL, params))
        if not runs:
            return None
        run = runs[0]
        if postgresql:
            row = run.claimed_tenant
            run.tenant = Tenant(**{field.attname: field.to_python(row[field.column])
                                   for field in Tenant._meta.concrete_fields})
        return run

    def renew(self, *, pk: int, attempts: int, lease_until: datetime, progress: int | None = None,
              message: str | None = None) -> tuple[bool, datetime | None]:
        """Renew a running attempt's lease (and record progress); (cancel requested, terminate requested at)."""
        connection = connections[self.db]
        if connection.vendor == "postgresql":
            params = {"pk": pk, "attempts": attempts, "running": JobRun.Status.RUNNING, "lease": lease_until,
                      "progress": progress, "message": message, "sync": None if connection.in_atomic_block else "off"}
            with connection.cursor() as cursor:
                cursor.execute(RENEW_SQL_POSTGRESQL, params)
                row = cursor.fetchone()
        else:  # no data-modifying CTE: a write and a read
            changes: dict[str, Any] = {"lease_expires_at": lease_until}
            if progress is not None:
                changes.update(progress=progress, progress_message=message or "")
            self.filter(pk=pk, status=JobRun.Status.RUNNING, attempts=attempts).update(**changes)
            row = self.filter(pk=pk).values_list("cancel_requested", "terminate_requested_at").first()
        return (bool(row[0]), row[1]) if row else (False, None)

    def record_outcomes(self, outcomes: list[Outcome], *, durable: bool = True) -> set[int]:
        """Write many attempts' outcomes in one commit; the pks of the runs whose attempt still held them.

        `durable=False` (only when every outcome's type opted out of durable outcomes) commits without waiting
        for the WAL flush on PostgreSQL.
        """
        if not outcomes:
            return set()
        connection = connections[self.db]
        if connection.vendor == "postgresql":
            params = {
                "ids": [o.run_pk for o in outcomes], "attempts": [o.attempts for o in outcomes],
                "statuses": [str(o.status) for o in outcomes], "results": [o.result_json for o in outcomes],
                "errors": [o.error for o in outcomes], "tracebacks": [o.traceback for o in outcomes],
                "ended": [o.ended_at for o in outcomes], "finished": [o.finished_at for o in outcomes],
                "next": [o.next_attempt_at for o in outcomes], "ended_how": [str(o.ended_how) for o in outcomes],
                "running": JobRun.Status.RUNNING, "succeeded": JobRun.Status.SUCCEEDED,
                "sync": None if durable or connection.in_atomic_block else "off",
            }
            with connection.cursor() as cursor:
                cursor.execute(OUTCOMES_SQL_POSTGRESQL, params)
                return {row[0] for row in cursor.fetchall()}
        import json

        done = set()
        with transaction.atomic(using=self.db):
            for o in outcomes:
                changes: dict[str, Any] = {"status": o.status, "error": o.error, "traceback": o.traceback,
                                           "finished_at": o.finished_at, "next_attempt_at": o.next_attempt_at,
                                           "lease_expires_at": None}
                if o.result_json is not None:
                    changes["result"] = json.loads(o.result_json)
                if o.status == JobRun.Status.SUCCEEDED:
                    changes["progress"] = 100
                held = self.filter(pk=o.run_pk, status=JobRun.Status.RUNNING, attempts=o.attempts)
                started = held.values_list("worker", "started_at").first()
                if started and held.update(**changes):
                    done.add(o.run_pk)
                    JobAttempt.objects.create(
                        run_id=o.run_pk, number=o.attempts, worker=started[0], started_at=started[1],
                        ended_at=o.ended_at, outcome=o.status, ended_how=o.ended_how, error=o.error,
                        traceback=o.traceback)
        return done


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
    cluster = models.CharField(max_length=200, blank=True, db_index=True,
                               help_text="host:pid of the django-q2 cluster whose worker took the last attempt.")
    terminate_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="An operator asked for a hard stop: the worker ends the task after the "
                                         "grace period.")

    objects = JobRunQuerySet.as_manager()

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


class JobCluster(models.Model):
    """A running django-q2 cluster, kept alive by its workers' heartbeats. When it stops beating (or is found
    dead at another cluster's start), the queued runs it may have taken into memory are delivered again."""

    key = models.CharField(max_length=200, unique=True, help_text="host:pid of the cluster's sentinel process.")
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class JobAttempt(models.Model):
    """One attempt of a run, kept when it ends: who ran it, when, and how it ended."""

    class EndedHow(models.TextChoices):
        FINISHED = "finished"
        FAILED = "failed"
        LEASE_EXPIRED = "lease_expired", "lease expired"
        CANCELLED = "cancelled"
        TERMINATED = "terminated"

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="attempt_history")
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=JobRun.Status.choices,
                               help_text="The run's status after this attempt.")
    ended_how = models.CharField(max_length=16, choices=EndedHow.choices)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["run_id", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="jobs_attempt_run_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of run {self.run_id} ({self.ended_how})"


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
        from apps.core.job_types import registry

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
