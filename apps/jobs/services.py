"""Every write of the jobs app: submission, the lifecycle of an attempt, cancel/retry, the sweep, schedules."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import record
from apps.core import context, health
from apps.core.context import Actor
from apps.core.errors import ApplicationError, ConflictError
from apps.jobs.backoff import RandomSource, retry_delay_s
from apps.jobs.conf import jobs_settings
from apps.jobs.models import JobRun, JobSchedule
from apps.jobs.registry import get_type, registry
from apps.tenancy.models import Tenant
from apps.tenancy.roles import role_at_least

log = logging.getLogger(__name__)

Status = JobRun.Status
EXECUTE_FUNC = "apps.jobs.runner.execute"
FIRE_FUNC = "apps.jobs.runner.fire_schedule"
SWEEP_FUNC = "apps.jobs.runner.sweep"
SWEEP_SCHEDULE_NAME = "bulwark.jobs.reap"
SCHEDULE_PREFIX = "bulwark.jobs.schedule:"
# A run queued without a recorded delivery (broker down at submit) is delivered again after this long.
UNDELIVERED_GRACE_S = 30


# --- submission ---------------------------------------------------------------------------------------

def job_submit(
    *,
    type: str,
    params: dict,
    tenant: Tenant,
    submitted_by: Actor | None = None,
    idempotency_key: str | None = None,
    role: str | None = None,
) -> JobRun:
    """Validate the parameters and queue one run; with an idempotency key, return the run it already made.

    Invalid parameters raise a ValidationError with field errors and nothing is queued. The broker message
    is sent after the transaction commits, so a worker never sees a run that is not in the database.
    `role` is the submitting person's role (API, admin), checked against the type's `submit_role`;
    None for the platform's own submissions (schedules, other apps' services).
    """
    return _run_create(type=type, params=params, tenant=tenant, submitted_by=submitted_by,
                       idempotency_key=idempotency_key, role=role)


def _run_create(
    *,
    type: str,
    params: dict,
    tenant: Tenant,
    submitted_by: Actor | None,
    idempotency_key: str | None,
    retry_of: JobRun | None = None,
    role: str | None = None,
) -> JobRun:
    job = get_type(type)
    if role is not None and not role_at_least(role, job.submit_role):
        raise ApplicationError(f"Submitting {type!r} jobs needs the {job.submit_role} role; you have {role}.",
                               code="permission_denied", status=403)
    validated = job.validate(params or {})
    if idempotency_key:
        existing = _existing_for_key(tenant=tenant, type=type, idempotency_key=idempotency_key)
        if existing is not None:
            return existing
    actor = submitted_by or context.current_actor()
    # One INSERT, so no transaction of its own: outside a caller's transaction it is one durable autocommit
    # (not BEGIN, INSERT, COMMIT: three round trips); inside one it commits, or not, with the caller's change.
    # enqueued_at is written with the row; a failed enqueue clears it.
    run = JobRun(
        tenant=tenant, type=type, params=validated, max_attempts=job.max_attempts, idempotency_key=idempotency_key or None,
        submitted_by_kind=actor.kind, submitted_by_id=actor.id, submitted_by_display=actor.display[:200],
        retry_of=retry_of, enqueued_at=timezone.now(),
    )
    if idempotency_key:
        try:
            with transaction.atomic():  # only where a duplicate key can make the INSERT fail
                run.save()
        except IntegrityError:
            # A concurrent submission with the same key won the race: answer with its run.
            existing = _existing_for_key(tenant=tenant, type=type, idempotency_key=idempotency_key)
            if existing is None:
                raise
            return existing
    else:
        run.save()
    transaction.on_commit(lambda: run_deliver(run_pk=run.pk, type=run.type))
    return run


def _existing_for_key(*, tenant: Tenant, type: str, idempotency_key: str | None) -> JobRun | None:
    existing = JobRun.objects.for_tenant(tenant).filter(idempotency_key=idempotency_key).first()
    if existing is not None and existing.type != type:
        raise ConflictError(
            f"Idempotency key {idempotency_key!r} was already used for a {existing.type!r} job (run {existing.pk}).",
            extra={"errors": {"idempotency_key": ["Already used for another job type."]}},
        )
    return existing


def run_deliver(*, run_pk: int, type: str) -> str | None:
    """Send the broker message of a queued run; the django-q2 task id is recorded when a worker claims it.

    A broker failure clears `enqueued_at`, so the sweep sends it again once the broker is back.
    """
    from django_q.tasks import async_task

    job = registry.get(type)
    # save=False: the JobRun is the record of what ran; a django-q2 Task row per run would only duplicate it
    # (and cost its monitor an INSERT and a pruning query per run). Failed deliveries are still saved.
    options: dict[str, Any] = {"task_name": f"{type}#{run_pk}", "timeout": job.timeout_s if job else None,
                               "save": False}
    if job is not None and job.queue != "default":
        options["cluster"] = job.queue
    try:
        task_id = async_task(EXECUTE_FUNC, run_pk, q_options=options)
    except Exception as exc:
        health.mark_degraded("jobs.broker", f"enqueue failed: {exc.__class__.__name__}: {exc}")
        log.warning("run %s stays queued: enqueue failed (%s); the sweep will deliver it", run_pk, exc)
        JobRun.objects.filter(pk=run_pk, status=Status.QUEUED).update(enqueued_at=None)
        return None
    health.mark_ok("jobs.broker")
    return task_id


# --- one attempt, called by the worker ---------------------------------------------------------------

def _async_commit_from() -> str:
    """A FROM item that makes the statement's own transaction commit without waiting for the WAL flush.

    `set_config('synchronous_commit', 'off', true)` is `SET LOCAL` inside the statement, so an autocommit
    UPDATE stays one round trip. Only for writes the lease machinery repairs if a database crash loses them:
    a lost claim leaves the run queued (delivered again), a lost heartbeat or progress report only shortens a
    lease. The facts users rely on, a submission accepted and an outcome, keep fully durable commits; any
    later durable commit flushes these too, so the window is a crash within a fraction of a second. Inside a
    caller's transaction (a job reporting progress from its own atomic block) the setting would outlive the
    statement and make the caller's commit non-durable, so it is left out there, as on other databases.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return ""
    return " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


def run_claim(*, run_pk: int, worker: str, task_id: str = "", now: datetime | None = None) -> JobRun | None:
    """Take a queued run for this worker, or None when it is not runnable (cancelled, already taken).

    One conditional UPDATE: a second delivery of the same message (ORM broker redelivery, the sweep
    resending a delivery it thought lost) finds the run no longer queued and does nothing.
    """
    now = now or timezone.now()
    stamp = connection.ops.adapt_datetimefield_value  # what the ORM would store (naive UTC on SQLite)
    params = {"pk": run_pk, "queued": Status.QUEUED.value, "running": Status.RUNNING.value, "now": stamp(now),
              "worker": worker[:200], "task_id": task_id,
              "lease": stamp(now + timedelta(seconds=jobs_settings.LEASE_S))}
    # One statement, one round trip (not BEGIN, SET LOCAL, UPDATE, SELECT, COMMIT, then the tenant's SELECT):
    # the claim is the worker's hottest write.
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    run_fields, tenant_fields = JobRun._meta.concrete_fields, _claim_tenant_fields()
    fields = run_fields + tenant_fields
    compiler = JobRun.objects.none().query.get_compiler(connection=connection)
    converters = compiler.get_converters([field.get_col(field.model._meta.db_table) for field in fields])
    if converters:
        row = next(iter(compiler.apply_converters([row], converters)))
    run = JobRun.from_db(connection.alias, [field.attname for field in run_fields], row[:len(run_fields)])
    if tenant_fields:
        run.tenant = Tenant.from_db(connection.alias, [field.attname for field in tenant_fields],
                                    row[len(run_fields):])
    return run


def _claim_tenant_fields() -> tuple:
    # Only PostgreSQL has data-modifying CTEs to join the tenant in; elsewhere it loads when first used.
    return Tenant._meta.concrete_fields if connection.vendor == "postgresql" else ()


def _claim_sql() -> str:
    """UPDATE ... RETURNING: the claimed row comes back from the write itself (SQLite >= 3.35), and on
    PostgreSQL with its tenant, committed without waiting for the WAL flush (see _async_commit_from)."""
    quote = connection.ops.quote_name
    table = quote(JobRun._meta.db_table)
    returning = ", ".join(f"{table}.{quote(field.column)}" for field in JobRun._meta.concrete_fields)
    update = (f"UPDATE {table} SET status = %(running)s, attempts = {table}.attempts + 1, started_at = %(now)s,"
              f" worker = %(worker)s, task_id = %(task_id)s, lease_expires_at = %(lease)s, next_attempt_at = NULL")
    where = f"WHERE {table}.id = %(pk)s AND {table}.status = %(queued)s RETURNING {returning}"
    if connection.vendor != "postgresql":
        return f"{update} {where}"
    update += _async_commit_from()
    tenant_columns = ", ".join(f"tenant.{quote(field.column)}" for field in Tenant._meta.concrete_fields)
    return (f"WITH claimed AS ({update} {where}) SELECT claimed.*, {tenant_columns} FROM claimed"
            f" JOIN {quote(Tenant._meta.db_table)} AS tenant ON tenant.id = claimed.tenant_id")


def run_heartbeat(*, run: JobRun, now: datetime | None = None) -> bool:
    """Renew the lease of a running attempt. Returns whether a cancel was requested."""
    return _renew(run=run, now=now, changes={})


def run_progress(*, run: JobRun, percent: int, message: str = "", now: datetime | None = None) -> bool:
    """Record progress (and renew the lease). Returns whether a cancel was requested."""
    return _renew(run=run, now=now, changes={"progress": max(0, min(100, int(percent))),
                                             "progress_message": message[:200]})


def _renew(*, run: JobRun, now: datetime | None, changes: dict[str, Any]) -> bool:
    # One statement: renew the lease (fenced by attempt) and read whether a cancel was requested (the
    # SELECT sees the row as before the UPDATE, which does not touch cancel_requested).
    now = now or timezone.now()
    quote = connection.ops.quote_name
    table = quote(JobRun._meta.db_table)
    params = {"pk": run.pk, "attempts": run.attempts, "running": Status.RUNNING.value,
              "lease": connection.ops.adapt_datetimefield_value(now + timedelta(seconds=jobs_settings.LEASE_S)),
              **changes}
    columns = {"lease_expires_at": "lease", **{name: name for name in changes}}  # column: parameter
    assignments = ", ".join(f"{quote(column)} = %({param})s" for column, param in columns.items())
    update = (f"UPDATE {table} SET {assignments}{_async_commit_from()} WHERE {table}.id = %(pk)s"
              f" AND {table}.status = %(running)s AND {table}.attempts = %(attempts)s")
    select = f"SELECT cancel_requested FROM {table} WHERE id = %(pk)s"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH renewed AS ({update} RETURNING 1) {select}", params)
            row = cursor.fetchone()
        else:  # no data-modifying CTE: two statements, each a write or a read of its own
            cursor.execute(update, params)
            cursor.execute(select, params)
            row = cursor.fetchone()
    return bool(row and row[0])


def _this_attempt(run: JobRun):
    # Fencing: only the attempt that holds the run may finish it; a reaped attempt that wakes up later
    # (a paused process, a partitioned host) changes nothing.
    return JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts)


def run_succeeded(*, run: JobRun, result: Any, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    result = json.loads(json.dumps(result, cls=DjangoJSONEncoder)) if result is not None else None
    return bool(_this_attempt(run).update(
        status=Status.SUCCEEDED, progress=100, result=result, error="", traceback="", finished_at=now,
        lease_expires_at=None,
    ))


def run_cancelled(*, run: JobRun, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(_this_attempt(run).update(
        status=Status.CANCELLED, error="Cancelled while running.", finished_at=now, lease_expires_at=None,
    ))


def run_attempt_failed(
    *,
    run: JobRun,
    error: str,
    traceback: str = "",
    retryable: bool = True,
    now: datetime | None = None,
    rng: RandomSource | None = None,
) -> str | None:
    """End a failed attempt: `retrying` after a jittered exponential delay, or `failed` when none is left.

    Returns the new status, or None when this attempt no longer holds the run.
    """
    now = now or timezone.now()
    if retryable and run.attempts < run.max_attempts:
        delay_s = retry_delay_s(attempt=run.attempts, base_s=jobs_settings.RETRY_BASE_DELAY_S,
                                max_s=jobs_settings.RETRY_MAX_DELAY_S, rng=rng)
        updated = _this_attempt(run).update(
            status=Status.RETRYING, error=error[:10_000], traceback=traceback[:50_000],
            next_attempt_at=now + timedelta(seconds=delay_s), lease_expires_at=None,
        )
        return Status.RETRYING if updated else None
    if retryable:
        error = f"{error} (gave up after {run.attempts} of {run.max_attempts} attempts)"
    updated = _this_attempt(run).update(
        status=Status.FAILED, error=error[:10_000], traceback=traceback[:50_000], finished_at=now,
        lease_expires_at=None,
    )
    return Status.FAILED if updated else None


# --- operator actions ---------------------------------------------------------------------------------

@transaction.atomic
def run_cancel(*, run: JobRun, actor: Actor | None = None, now: datetime | None = None) -> JobRun:
    """Cancel a run: at once if it has not started, at its next progress report if it is running."""
    now = now or timezone.now()
    run = JobRun.objects.select_for_update().get(pk=run.pk)
    if run.status in (Status.QUEUED, Status.RETRYING):
        run.status, run.finished_at, run.next_attempt_at = Status.CANCELLED, now, None
        run.error = "Cancelled before it ran."
        run.save(update_fields=["status", "finished_at", "next_attempt_at", "error"])
    elif run.status == Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise ConflictError(f"Run {run.pk} is already {run.status}; only queued, retrying or running runs can be "
                            f"cancelled.", extra={"errors": {"status": [f"Run is {run.status}."]}})
    record(action="jobs.cancel", obj=run, actor=actor,
           changes={"type": run.type, "status": run.status, "cancel_requested": run.cancel_requested})
    return run


@transaction.atomic
def run_retry(*, run: JobRun, actor: Actor | None = None, role: str | None = None) -> JobRun:
    """Submit a failed or cancelled run again, as a new run linked to it (`role`: as in job_submit)."""
    if run.status not in (Status.FAILED, Status.CANCELLED):
        raise ConflictError(f"Run {run.pk} is {run.status}; only failed or cancelled runs can be retried.",
                            extra={"errors": {"status": [f"Run is {run.status}."]}})
    new_run = _run_create(type=run.type, params=run.params, tenant=run.tenant, submitted_by=actor,
                          idempotency_key=None, retry_of=run, role=role)
    record(action="jobs.retry", obj=run, actor=actor, changes={"type": run.type, "new_run": new_run.pk})
    return new_run


# --- the sweep: orphans, due retries, lost deliveries -------------------------------------------------

def runs_sweep(*, now: datetime | None = None, rng: RandomSource | None = None) -> dict[str, int]:
    """Recover what a dead worker or a lost message left behind. Run every minute by the `jobs.reap` schedule.

    - running runs whose lease expired (worker killed, timed out, host gone): the attempt fails with a
      clear reason, then the run is retried with backoff or failed;
    - retrying runs whose delay has passed: queued and delivered again;
    - queued runs never delivered, or delivered long ago (a Redis broker drops the message of a worker that
      dies after popping it): delivered again.
    """
    now = now or timezone.now()
    counts = {"orphaned": 0, "retried": 0, "redelivered": 0}
    with transaction.atomic():
        orphans = list(JobRun.objects.select_for_update(skip_locked=True).filter(
            status=Status.RUNNING, lease_expires_at__lt=now))
        for run in orphans:
            if run.cancel_requested:  # the operator's cancel stands even though the worker never saw it
                counts["orphaned"] += run_cancelled(run=run, now=now)
                continue
            reason = (f"Worker {run.worker or '?'} stopped heartbeating: the lease expired at "
                      f"{run.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC (the worker was killed, hit its timeout or "
                      f"lost its host) during attempt {run.attempts}.")
            if run_attempt_failed(run=run, error=reason, now=now, rng=rng):
                counts["orphaned"] += 1
    lost = Q(enqueued_at__isnull=True, queued_at__lt=now - timedelta(seconds=UNDELIVERED_GRACE_S)) | Q(
        enqueued_at__lt=now - timedelta(seconds=jobs_settings.REDELIVER_AFTER_S))
    with transaction.atomic():
        due = list(JobRun.objects.select_for_update(skip_locked=True).filter(
            status=Status.RETRYING, next_attempt_at__lte=now).values_list("pk", "type"))
        resend = list(JobRun.objects.select_for_update(skip_locked=True).filter(status=Status.QUEUED).filter(lost)
                      .values_list("pk", "type"))
        JobRun.objects.filter(pk__in=[pk for pk, _ in due]).update(status=Status.QUEUED, next_attempt_at=None)
        JobRun.objects.filter(pk__in=[pk for pk, _ in due + resend]).update(enqueued_at=now)
    counts["retried"], counts["redelivered"] = len(due), len(resend)
    for pk, type in due + resend:
        run_deliver(run_pk=pk, type=type)
    return counts


@transaction.atomic
def runs_purge(*, tenant: Tenant, older_than: datetime, actor: Actor | None = None) -> int:
    """Delete the tenant's finished runs that ended before `older_than`; one audit event says how many."""
    deleted, _ = JobRun.objects.for_tenant(tenant).filter(
        status__in=JobRun.FINISHED, finished_at__lt=older_than).delete()
    record(action="jobs.retention", tenant=tenant, actor=actor, object_type="bulwark_jobs.jobrun",
           changes={"older_than": older_than.isoformat(), "deleted": deleted})
    return deleted


# --- schedules ----------------------------------------------------------------------------------------

@transaction.atomic
def schedule_save(*, schedule: JobSchedule) -> JobSchedule:
    """Validate and save a schedule (from the admin or the sync), then register it with django-q2."""
    if schedule.type in registry:
        schedule.params = registry[schedule.type].validate(schedule.params or {})
    schedule.full_clean()
    schedule.save()
    _q2_schedule_sync(schedule)
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: JobSchedule) -> None:
    from django_q.models import Schedule

    Schedule.objects.filter(name=schedule.q2_name).delete()
    schedule.delete()


def _q2_schedule_sync(schedule: JobSchedule) -> None:
    from django_q.models import Schedule

    if not schedule.enabled:
        Schedule.objects.filter(name=schedule.q2_name).delete()
        return
    wanted = {"func": FIRE_FUNC, "args": repr(schedule.pk), "repeats": -1}
    if schedule.cron:
        wanted.update(schedule_type=Schedule.CRON, cron=schedule.cron, minutes=None)
    else:
        wanted.update(schedule_type=Schedule.MINUTES, minutes=schedule.interval_min, cron=None)
    _q2_upsert(schedule.q2_name, wanted)
    JobSchedule.objects.filter(pk=schedule.pk).update(last_synced_at=timezone.now())


def _q2_upsert(name: str, wanted: dict) -> bool:
    """Create or correct the django-q2 Schedule called `name`; True when something changed."""
    from django_q.models import Schedule

    existing = Schedule.objects.filter(name=name).order_by("pk")
    current = existing.first()
    if current is None:
        Schedule.objects.create(name=name, **wanted)
        return True
    existing.exclude(pk=current.pk).delete()
    changed = [key for key, value in wanted.items() if getattr(current, key) != value]
    if changed:
        for key in changed:
            setattr(current, key, wanted[key])
        current.next_run = timezone.now()  # recomputed by django-q2 from the new cadence after the next run
        current.save()
    return bool(changed)


@transaction.atomic
def schedules_sync_all() -> dict[str, int]:
    """Idempotent: declared schedules exist, every JobSchedule has its django-q2 twin, no stale twins remain."""
    from django_q.models import Schedule

    created = 0
    for job in registry.values():
        if not job.periodic:
            continue
        if JobSchedule.objects.filter(tenant__isnull=True, name=job.name).exists():
            continue  # an operator may have changed its cadence or disabled it: theirs wins
        schedule_save(schedule=JobSchedule(name=job.name, type=job.name, cron=job.cron,
                                           interval_min=job.interval_min, declared=True))
        created += 1
    schedules = list(JobSchedule.objects.all())
    for schedule in schedules:
        _q2_schedule_sync(schedule)
    live = {s.q2_name for s in schedules if s.enabled}
    stale = Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=live)
    removed, _ = stale.delete()
    _q2_upsert(SWEEP_SCHEDULE_NAME, {"func": SWEEP_FUNC, "args": None, "repeats": -1,
                                     "schedule_type": Schedule.MINUTES, "minutes": jobs_settings.SWEEP_EVERY_MIN,
                                     "cron": None})
    return {"created": created, "synced": len(schedules), "removed": removed}


def schedule_fire(*, schedule_pk: int, now: datetime | None = None) -> list[JobRun]:
    """Submit the runs of one schedule tick: for its tenant, or for every active tenant if a platform one.

    The idempotency key carries the tick's minute, so a tick fired twice queues each run once.
    """
    now = now or timezone.now()
    schedule = JobSchedule.objects.filter(pk=schedule_pk, enabled=True).select_related("tenant").first()
    if schedule is None or (schedule.tenant is not None and not schedule.tenant.is_active):
        return []
    tenants = [schedule.tenant] if schedule.tenant else list(Tenant.objects.filter(is_active=True))
    actor = Actor.system(display=f"schedule {schedule.name}", id=f"schedule:{schedule.pk}")
    runs = []
    for tenant in tenants:
        key = f"schedule:{schedule.pk}:{now:%Y%m%dT%H%M}"
        try:
            runs.append(job_submit(type=schedule.type, params=schedule.params, tenant=tenant, submitted_by=actor,
                                   idempotency_key=key))
        except Exception:
            log.exception("schedule %s could not submit %s for tenant %s", schedule.pk, schedule.type, tenant)
    return runs
