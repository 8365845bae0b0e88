"""Every write of the jobs app: submission, the lifecycle of an attempt, cancel/retry, the sweep, schedules."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import serializers

from apps.audit.services import record
from apps.core import context, health
from apps.core.context import Actor
from apps.core.errors import ApplicationError, ConflictError
from apps.core.job_types import get_type, registry
from apps.jobs.backoff import RandomSource, retry_delay_s
from apps.jobs.conf import jobs_settings
from apps.jobs.models import JobAttempt, JobCluster, JobRun, JobSchedule, Outcome
from apps.tenancy.models import Tenant
from apps.tenancy.roles import role_at_least

log = logging.getLogger(__name__)

Status = JobRun.Status
EndedHow = JobAttempt.EndedHow
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
    job_type: str,
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
    return _run_create(job_type=job_type, params=params, tenant=tenant, submitted_by=submitted_by,
                       idempotency_key=idempotency_key, role=role)


@dataclass(frozen=True)
class Submission:
    """One run of a batch given to `job_submit_many`."""

    job_type: str
    params: dict
    tenant: Tenant
    idempotency_key: str | None = None


def job_submit_many(
    *,
    submissions: list[Submission],
    submitted_by: Actor | None = None,
    role: str | None = None,
) -> list[JobRun]:
    """Queue many runs with one multi-row INSERT, one commit and one pipelined broker push.

    All or nothing: every submission is validated first, and any invalid one raises a ValidationError
    (errors keyed by the submission's index) with nothing queued. A submission whose idempotency key was
    already used answers with the existing run (and queues nothing for it), as `job_submit` does.
    """
    if len(submissions) > jobs_settings.SUBMIT_MANY_MAX:
        raise serializers.ValidationError(
            {"runs": [f"At most {jobs_settings.SUBMIT_MANY_MAX} runs per batch; got {len(submissions)}."]})
    errors: dict[str, Any] = {}
    validated = []
    for index, submission in enumerate(submissions):
        try:
            job = get_type(submission.job_type)
            _check_role(job, role)
            validated.append(job.validate(submission.params or {}))
        except (serializers.ValidationError, ApplicationError) as exc:
            errors[str(index)] = exc.detail if isinstance(exc, serializers.ValidationError) else [exc.message]
    if errors:
        raise serializers.ValidationError({"runs": errors})
    actor = submitted_by or context.current_actor()
    try:
        return _runs_create(submissions, validated, actor)
    except IntegrityError:
        # A concurrent batch used one of the idempotency keys first (two ticks of one schedule): once more,
        # and those submissions answer with its runs.
        return _runs_create(submissions, validated, actor)


def _runs_create(submissions: list[Submission], validated: list[dict], actor: Actor) -> list[JobRun]:
    now = timezone.now()
    with transaction.atomic():
        existing: dict[int, JobRun] = {}
        for index, submission in enumerate(submissions):
            if submission.idempotency_key:
                found = _existing_for_key(tenant=submission.tenant, job_type=submission.job_type,
                                          idempotency_key=submission.idempotency_key)
                if found is not None:
                    existing[index] = found
        new = [
            _new_run(job_type=s.job_type, params=validated[i], tenant=s.tenant, actor=actor,
                     idempotency_key=s.idempotency_key, now=now)
            for i, s in enumerate(submissions) if i not in existing
        ]
        # One INSERT ... RETURNING for the whole batch.
        created = iter(JobRun.objects.bulk_create(new))
        runs = [existing[i] if i in existing else next(created) for i in range(len(submissions))]
        fresh = [(run.pk, run.type) for run in new]
        transaction.on_commit(lambda: runs_deliver(runs=fresh))
    return runs


def _check_role(job, role: str | None) -> None:
    if role is not None and not role_at_least(role, job.submit_role):
        raise ApplicationError(f"Submitting {job.name!r} jobs needs the {job.submit_role} role; you have {role}.",
                               code="permission_denied", status=403)


def _new_run(*, job_type: str, params: dict, tenant: Tenant, actor: Actor, idempotency_key: str | None,
             now: datetime, retry_of: JobRun | None = None) -> JobRun:
    # enqueued_at is written with the row; a failed enqueue clears it.
    return JobRun(
        tenant=tenant, type=job_type, params=params, max_attempts=registry[job_type].max_attempts,
        idempotency_key=idempotency_key or None, submitted_by_kind=actor.kind, submitted_by_id=actor.id,
        submitted_by_display=actor.display[:200], retry_of=retry_of, queued_at=now, enqueued_at=now,
    )


def _run_create(
    *,
    job_type: str,
    params: dict,
    tenant: Tenant,
    submitted_by: Actor | None,
    idempotency_key: str | None,
    retry_of: JobRun | None = None,
    role: str | None = None,
) -> JobRun:
    job = get_type(job_type)
    _check_role(job, role)
    validated = job.validate(params or {})
    if idempotency_key:
        existing = _existing_for_key(tenant=tenant, job_type=job_type, idempotency_key=idempotency_key)
        if existing is not None:
            return existing
    actor = submitted_by or context.current_actor()
    # One INSERT, so no transaction of its own: outside a caller's transaction it is one durable autocommit
    # (not BEGIN, INSERT, COMMIT: three round trips); inside one it commits, or not, with the caller's change.
    run = _new_run(job_type=job_type, params=validated, tenant=tenant, actor=actor, idempotency_key=idempotency_key,
                   now=timezone.now(), retry_of=retry_of)
    if idempotency_key:
        try:
            with transaction.atomic():  # only where a duplicate key can make the INSERT fail
                run.save()
        except IntegrityError:
            # A concurrent submission with the same key won the race: answer with its run.
            existing = _existing_for_key(tenant=tenant, job_type=job_type, idempotency_key=idempotency_key)
            if existing is None:
                raise
            return existing
    else:
        run.save()
    transaction.on_commit(lambda: run_deliver(run_pk=run.pk, job_type=run.type))
    return run


def _existing_for_key(*, tenant: Tenant, job_type: str, idempotency_key: str | None) -> JobRun | None:
    existing = JobRun.objects.for_tenant(tenant).filter(idempotency_key=idempotency_key).first()
    if existing is not None and existing.type != job_type:
        raise ConflictError(
            f"Idempotency key {idempotency_key!r} was already used for a {existing.type!r} job (run {existing.pk}).",
            extra={"errors": {"idempotency_key": ["Already used for another job type."]}},
        )
    return existing


def _q2_options(run_pk: int, job_type: str) -> dict[str, Any]:
    job = registry.get(job_type)
    # save=False: the JobRun is the record of what ran; a django-q2 Task row per run would only duplicate it
    # (and cost its monitor an INSERT and a pruning query per run). Failed deliveries are still saved.
    options: dict[str, Any] = {"task_name": f"{job_type}#{run_pk}", "timeout": job.timeout_s if job else None,
                               "save": False}
    if job is not None and job.queue != "default":
        options["cluster"] = job.queue
    return options


def run_deliver(*, run_pk: int, job_type: str) -> str | None:
    """Send the broker message of a queued run; the django-q2 task id is recorded when a worker claims it.

    A broker failure clears `enqueued_at`, so the sweep sends it again once the broker is back.
    """
    from django_q.tasks import async_task

    try:
        task_id = async_task(EXECUTE_FUNC, run_pk, q_options=_q2_options(run_pk, job_type))
    except Exception as exc:
        _delivery_failed([run_pk], exc)
        return None
    health.mark_ok("jobs.broker")
    return task_id


def runs_deliver(*, runs: list[tuple[int, str]]) -> int:
    """Send the broker messages of many queued runs (pk, type) in one pipelined push; how many were sent.

    The messages are what `async_task` would send (django-q2's signed package); on the Redis broker they go
    out in one round trip, on others one enqueue each.
    """
    if not runs:
        return 0
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    if Conf.SYNC:  # django-q2's synchronous mode (tests, debugging) runs each task inside async_task
        return sum(run_deliver(run_pk=pk, job_type=job_type) is not None for pk, job_type in runs)
    try:
        by_queue: dict[str | None, list] = {}
        for run_pk, job_type in runs:
            options = _q2_options(run_pk, job_type)
            by_queue.setdefault(options.pop("cluster", None), []).append(_q2_package(run_pk, options))
        for queue, packages in by_queue.items():
            _push_many(get_broker(queue or Conf.CLUSTER_NAME), packages)
    except Exception as exc:
        _delivery_failed([pk for pk, _ in runs], exc)
        return 0
    health.mark_ok("jobs.broker")
    return len(runs)


def _push_many(broker, packages: list[str]) -> None:
    """One round trip for many messages where the broker allows it: a Redis pipeline of RPUSHes, or one
    multi-row INSERT of django-q2's ORM queue rows (what `enqueue` writes one at a time); else one each."""
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ

    if isinstance(broker, Redis):
        with broker.connection.pipeline(transaction=False) as pipe:
            for package in packages:
                pipe.rpush(broker.list_key, package)
            pipe.execute()
    elif isinstance(broker, ORM):
        now = timezone.now()
        OrmQ.objects.using(Conf.ORM).bulk_create(
            [OrmQ(key=broker.list_key or Conf.CLUSTER_NAME, payload=package, lock=now) for package in packages])
    else:
        for package in packages:
            broker.enqueue(package)


def _q2_package(run_pk: int, options: dict[str, Any]) -> str:
    """The signed message django-q2's `async_task` would enqueue for `execute(run_pk)`."""
    from django_q.conf import Conf
    from django_q.humanhash import uuid
    from django_q.signing import SignedPackage

    tag = uuid()
    task = {"id": tag[1], "name": options.get("task_name") or tag[0], "func": EXECUTE_FUNC, "args": (run_pk,),
            "kwargs": {}, "started": timezone.now(), "save": options.get("save"), "timeout": options.get("timeout")}
    if Conf.CLUSTER_NAME:
        task["cluster"] = Conf.CLUSTER_NAME
    return SignedPackage.dumps(task)


def _delivery_failed(run_pks: list[int], exc: Exception) -> None:
    health.mark_degraded("jobs.broker", f"enqueue failed: {exc.__class__.__name__}: {exc}")
    log.warning("runs %s stay queued: enqueue failed (%s); the sweep will deliver them", run_pks, exc)
    JobRun.objects.filter(pk__in=run_pks, status=Status.QUEUED).update(enqueued_at=None)


# --- one attempt, called by the worker ---------------------------------------------------------------

def run_claim(*, run_pk: int, worker: str, task_id: str = "", cluster: str = "",
              now: datetime | None = None) -> JobRun | None:
    """Take a queued run for this worker, or None when it is not runnable (cancelled, already taken).

    One conditional UPDATE: a second delivery of the same message (ORM broker redelivery, the sweep
    resending a delivery it thought lost) finds the run no longer queued and does nothing.
    """
    now = now or timezone.now()
    return JobRun.objects.claim(pk=run_pk, worker=worker, task_id=task_id, cluster=cluster, now=now,
                                lease_until=now + timedelta(seconds=jobs_settings.LEASE_S))


def run_heartbeat(*, run: JobRun, now: datetime | None = None) -> bool:
    """Renew the lease of a running attempt. Returns whether a cancel was requested."""
    return _renew(run=run, now=now)[0]


def run_renew(*, run_pk: int, attempts: int, now: datetime | None = None) -> None:
    """Renew the lease of a finished attempt whose outcome waits in its worker's group commit."""
    now = now or timezone.now()
    JobRun.objects.renew(pk=run_pk, attempts=attempts, lease_until=now + timedelta(seconds=jobs_settings.LEASE_S))


def run_heartbeat_requests(*, run: JobRun, now: datetime | None = None) -> tuple[bool, datetime | None]:
    """Renew the lease; (cancel requested, when a hard stop was requested or None)."""
    return _renew(run=run, now=now)


def run_progress(*, run: JobRun, percent: int, message: str = "", now: datetime | None = None) -> bool:
    """Record progress (and renew the lease). Returns whether a cancel was requested."""
    return _renew(run=run, now=now, progress=max(0, min(100, int(percent))), message=message[:200])[0]


def _renew(*, run: JobRun, now: datetime | None, progress: int | None = None,
           message: str | None = None) -> tuple[bool, datetime | None]:
    now = now or timezone.now()
    return JobRun.objects.renew(pk=run.pk, attempts=run.attempts, progress=progress, message=message,
                                lease_until=now + timedelta(seconds=jobs_settings.LEASE_S))


def outcome_succeeded(*, run: JobRun, result: Any, now: datetime | None = None) -> Outcome:
    """The outcome of an attempt that returned `result` (TypeError/ValueError if it is not JSON)."""
    return Outcome(run_pk=run.pk, attempts=run.attempts, status=Status.SUCCEEDED, ended_how=EndedHow.FINISHED,
                   ended_at=now or timezone.now(), result_json=json.dumps(result, cls=DjangoJSONEncoder))


def outcome_cancelled(*, run: JobRun, ended_how: str = EndedHow.CANCELLED, error: str = "Cancelled while running.",
                      now: datetime | None = None) -> Outcome:
    return Outcome(run_pk=run.pk, attempts=run.attempts, status=Status.CANCELLED, ended_how=ended_how,
                   ended_at=now or timezone.now(), error=error)


def outcome_failed(
    *,
    run: JobRun,
    error: str,
    traceback: str = "",
    retryable: bool = True,
    ended_how: str = EndedHow.FAILED,
    now: datetime | None = None,
    rng: RandomSource | None = None,
) -> Outcome:
    """A failed attempt: `retrying` after a jittered exponential delay, or `failed` when none is left."""
    now = now or timezone.now()
    if retryable and run.attempts < run.max_attempts:
        delay_s = retry_delay_s(attempt=run.attempts, base_s=jobs_settings.RETRY_BASE_DELAY_S,
                                max_s=jobs_settings.RETRY_MAX_DELAY_S, rng=rng)
        return Outcome(run_pk=run.pk, attempts=run.attempts, status=Status.RETRYING, ended_how=ended_how,
                       ended_at=now, error=error[:10_000], traceback=traceback[:50_000],
                       next_attempt_at=now + timedelta(seconds=delay_s))
    if retryable:
        error = f"{error} (gave up after {run.attempts} of {run.max_attempts} attempts)"
    return Outcome(run_pk=run.pk, attempts=run.attempts, status=Status.FAILED, ended_how=ended_how, ended_at=now,
                   error=error[:10_000], traceback=traceback[:50_000])


def outcomes_record(*, outcomes: list[Outcome], durable: bool = True) -> set[int]:
    """Write attempts' outcomes in one statement and one commit (the worker's group commit); fenced by
    attempt, so a reaped attempt that wakes up later changes nothing. Returns the runs it ended."""
    return JobRun.objects.record_outcomes(outcomes, durable=durable)


def outcome_record(outcome: Outcome, *, run: JobRun) -> bool:
    """Write one attempt's outcome at once (durable unless its type opted out); whether it took effect."""
    job = registry.get(run.type)
    return bool(outcomes_record(outcomes=[outcome], durable=job is None or job.durable_outcome))


# --- clusters: heartbeat and recovery of a dead one --------------------------------------------------

def cluster_heartbeat(*, key: str, host: str, pid: int, now: datetime | None = None) -> int:
    """Record that this cluster is alive, then recover any dead one; how many dead clusters it recovered.

    Called by every worker's heartbeat thread at its start (so a restarted cluster recovers its dead
    predecessor at once) and every HEARTBEAT_S.
    """
    now = now or timezone.now()
    JobCluster.objects.update_or_create(key=key, defaults={"host": host, "pid": pid, "heartbeat_at": now},
                                        create_defaults={"host": host, "pid": pid, "heartbeat_at": now,
                                                         "started_at": now})
    return clusters_recover(now=now, host=host)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clusters_recover(*, now: datetime | None = None, host: str | None = None) -> int:
    """Deliver again what dead clusters held: a cluster is dead when it has not beaten for LEASE_S, or when it
    ran on this host and its process is gone.

    django-q2's pusher pulls messages into its cluster's memory before a worker claims them; a killed cluster
    takes them along, and those runs would stay queued until REDELIVER_AFTER_S. Every queued run delivered
    before the dead cluster's last beat (plus one beat) may be among them and is delivered again: the ones
    still in the broker arrive twice, and the atomic claim runs them once. Its running runs' leases are
    expired at once, so the sweep retries them now rather than a lease later.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=jobs_settings.LEASE_S)
    candidates = [c for c in JobCluster.objects.all()
                  if c.heartbeat_at < stale or (host is not None and c.host == host and not _pid_alive(c.pid))]
    recovered = 0
    for dead in candidates:
        # Conditional delete: of several live clusters noticing the same death, one recovers it.
        taken, _ = JobCluster.objects.filter(pk=dead.pk, heartbeat_at=dead.heartbeat_at).delete()
        if not taken:
            continue
        recovered += 1
        # Its leases end when it was last known alive, so the sweep below retries its running runs now.
        JobRun.objects.filter(status=Status.RUNNING, cluster=dead.key).update(lease_expires_at=dead.heartbeat_at)
        held_until = dead.heartbeat_at + timedelta(seconds=jobs_settings.HEARTBEAT_S + 1)
        with transaction.atomic():
            resend = list(JobRun.objects.select_for_update(skip_locked=True)
                          .filter(status=Status.QUEUED, enqueued_at__lte=held_until).values_list("pk", "type"))
            JobRun.objects.filter(pk__in=[pk for pk, _ in resend]).update(enqueued_at=now)
        runs_deliver(runs=resend)
        log.warning("cluster %s is dead (last beat %s): %d queued runs delivered again", dead.key,
                    dead.heartbeat_at, len(resend))
    if recovered:
        runs_sweep(now=now)
    return recovered


# --- operator actions ---------------------------------------------------------------------------------

@transaction.atomic
def run_cancel(*, run: JobRun, actor: Actor | None = None, now: datetime | None = None) -> JobRun:
    """Cancel a run: at once if it has not started, at its next progress report or heartbeat if it is running."""
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
def run_terminate(*, run: JobRun, actor: Actor | None = None, now: datetime | None = None) -> JobRun:
    """Hard stop of a running run: cancel at once, and if the job has not stopped after TERMINATE_GRACE_S,
    its worker ends the task (the worker process is replaced). Queued or retrying runs are just cancelled."""
    now = now or timezone.now()
    run = JobRun.objects.select_for_update().get(pk=run.pk)
    if run.status != Status.RUNNING:
        return run_cancel(run=run, actor=actor, now=now)
    run.cancel_requested, run.terminate_requested_at = True, now
    run.save(update_fields=["cancel_requested", "terminate_requested_at"])
    record(action="jobs.terminate", obj=run, actor=actor,
           changes={"type": run.type, "worker": run.worker, "grace_s": jobs_settings.TERMINATE_GRACE_S})
    return run


@transaction.atomic
def run_retry(*, run: JobRun, actor: Actor | None = None, role: str | None = None) -> JobRun:
    """Submit a failed or cancelled run again, as a new run linked to it (`role`: as in job_submit)."""
    if run.status not in (Status.FAILED, Status.CANCELLED):
        raise ConflictError(f"Run {run.pk} is {run.status}; only failed or cancelled runs can be retried.",
                            extra={"errors": {"status": [f"Run is {run.status}."]}})
    new_run = _run_create(job_type=run.type, params=run.params, tenant=run.tenant, submitted_by=actor,
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
        outcomes = []
        for run in orphans:
            reason = (f"Worker {run.worker or '?'} stopped heartbeating: the lease expired at "
                      f"{run.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC (the worker was killed, hit its timeout or "
                      f"lost its host) during attempt {run.attempts}.")
            if run.cancel_requested:  # the operator's cancel stands even though the worker never saw it
                outcomes.append(outcome_cancelled(run=run, ended_how=EndedHow.LEASE_EXPIRED, error=reason, now=now))
            else:
                outcomes.append(outcome_failed(run=run, error=reason, ended_how=EndedHow.LEASE_EXPIRED, now=now,
                                               rng=rng))
        counts["orphaned"] = len(outcomes_record(outcomes=outcomes))
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
    runs_deliver(runs=due + resend)
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
    key = f"schedule:{schedule.pk}:{now:%Y%m%dT%H%M}"
    submissions = [Submission(job_type=schedule.type, params=schedule.params, tenant=tenant, idempotency_key=key)
                   for tenant in tenants]
    runs = []
    # One INSERT, one commit and one push per chunk of tenants, not per tenant.
    for first in range(0, len(submissions), jobs_settings.SUBMIT_MANY_MAX):
        chunk = submissions[first:first + jobs_settings.SUBMIT_MANY_MAX]
        try:
            runs.extend(job_submit_many(submissions=chunk, submitted_by=actor))
        except Exception:
            log.exception("schedule %s could not submit %s for %d tenants", schedule.pk, schedule.type, len(chunk))
    return runs
