"""What django-q2 workers call: run one attempt of a job (with heartbeat and context), fire a schedule, sweep."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback as tb

from django.db import connection
from django.utils import timezone
from django_q.exceptions import TimeoutException
from rest_framework.exceptions import ValidationError

from apps.core import context
from apps.core.context import Actor, RequestContext
from apps.core.job_types import DoNotRetry, JobCancelled, registry
from apps.jobs import services
from apps.jobs.conf import jobs_settings
from apps.jobs.models import JobAttempt, JobRun, Outcome

log = logging.getLogger(__name__)


class JobContext:
    """The `ctx` a job function receives: its run, its tenant, and progress reporting."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.tenant = run.tenant
        self.cancel_requested = threading.Event()

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress (0-100). Raises JobCancelled when the run was asked to stop: let it propagate."""
        if services.run_progress(run=self.run, percent=percent, message=message) or self.cancel_requested.is_set():
            raise JobCancelled(f"run {self.run.pk} was cancelled")


class Heartbeat(threading.Thread):
    """Renews the lease of the attempt its worker process is running, so a long step without progress
    reports is not reaped. One long-lived thread per process: starting a thread per run cost more than
    the run of a small job."""

    def __init__(self, interval_s: float, in_cluster: bool = False) -> None:
        super().__init__(name="jobs-heartbeat", daemon=True)
        self.in_cluster = in_cluster  # a django-q2 worker: also beats for its cluster
        self.interval_s = interval_s
        self.current: JobContext | None = None
        self.stopped = threading.Event()

    def watch(self, ctx: JobContext | None) -> None:
        self.current = ctx

    def run(self) -> None:
        try:
            while True:
                self.beat_cluster()
                ctx = self.current
                if ctx is not None:
                    try:
                        # A beat for an attempt that just ended changes nothing: renewals are fenced by attempt.
                        cancel, terminate_at = services.run_heartbeat_requests(run=ctx.run)
                        if cancel:
                            ctx.cancel_requested.set()
                        if terminate_at is not None:
                            self.terminate_after_grace(ctx, terminate_at)
                    except Exception:
                        log.exception("heartbeat of run %s failed; retrying at the next beat", ctx.run.pk)
                self.renew_pending()
                connection.close()  # one beat every few seconds: no idle connection held between them
                if self.stopped.wait(self.interval_s):
                    break
        finally:
            connection.close()

    def renew_pending(self) -> None:
        """Keep the leases of finished runs whose outcomes wait for the group commit: they are still this
        worker's, and only its death (no more beats) may hand them to the sweep."""
        for outcome in outcomes.waiting():
            try:
                services.run_renew(run_pk=outcome.run_pk, attempts=outcome.attempts)
            except Exception:
                log.exception("renewing the lease of run %s failed; retrying at the next beat", outcome.run_pk)

    def beat_cluster(self) -> None:
        if not self.in_cluster:
            return
        try:
            services.cluster_heartbeat(key=cluster_key(), host=socket.gethostname(), pid=os.getppid())
        except Exception:
            log.exception("cluster heartbeat failed; retrying at the next beat")

    def terminate_after_grace(self, ctx: JobContext, requested_at) -> None:
        """A hard stop: once the grace period has passed and the job is still running, record the attempt as
        terminated and kill this worker process (django-q2's sentinel starts a fresh one)."""
        if (timezone.now() - requested_at).total_seconds() < jobs_settings.TERMINATE_GRACE_S:
            return
        if self.current is not ctx:
            return  # the job ended by itself meanwhile
        outcomes.flush()
        services.outcomes_record(outcomes=[services.outcome_cancelled(
            run=ctx.run, ended_how=JobAttempt.EndedHow.TERMINATED,
            error=f"Terminated by an operator after a grace period of {jobs_settings.TERMINATE_GRACE_S} s.")])
        log.warning("run %s: terminating worker %s (hard stop requested)", ctx.run.pk, worker_name())
        os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class OutcomeBuffer:
    """Group commit of outcomes in a worker process: finished attempts wait up to OUTCOME_BATCH_MS (or until
    OUTCOME_BATCH_MAX of them) and are written by one thread in one statement and one commit, so a worker does
    not wait for a WAL flush per job. Until then their runs stay `running` under a valid lease; a worker killed
    meanwhile loses them and the sweep runs them again (at-least-once, as promised).

    Off (each outcome written at once) outside django-q2 workers and when OUTCOME_BATCH_MS is 0.
    """

    def __init__(self) -> None:
        self.enabled = False
        self.in_worker = False
        self.pending: list[tuple[Outcome, bool]] = []
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def enable(self) -> None:
        from multiprocessing.util import Finalize

        self.in_worker = True
        self.enabled = jobs_settings.OUTCOME_BATCH_MS > 0
        if self.enabled:
            # A recycled or stopped worker returns from django-q2's loop and exits: flush what is pending.
            Finalize(self, self.flush, exitpriority=10)

    def add(self, outcome: Outcome, *, durable: bool) -> None:
        if not self.enabled:
            services.outcomes_record(outcomes=[outcome], durable=durable)
            return
        with self.cond:
            self.pending.append((outcome, durable))
            full = len(self.pending) >= jobs_settings.OUTCOME_BATCH_MAX
            if not full:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self._run, name="jobs-outcomes", daemon=True)
                    self.thread.start()
                self.cond.notify_all()
        if full:  # the worker writes a full batch itself: bounded, and no hand-off to wait for
            self.flush()

    def _run(self) -> None:
        """Write what is pending once the oldest of it has waited OUTCOME_BATCH_MS."""
        window_s = jobs_settings.OUTCOME_BATCH_MS / 1000
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                deadline = time.monotonic() + window_s
                while self.pending and time.monotonic() < deadline:
                    self.cond.wait(max(0.0, deadline - time.monotonic()))
            self.flush()

    def waiting(self) -> list[Outcome]:
        with self.cond:
            return [outcome for outcome, _ in self.pending]

    def flush(self) -> None:
        with self.cond:
            batch, self.pending = self.pending, []
            self.cond.notify_all()
        if not batch:
            return
        # One commit for all; durable unless every outcome in it opted out (then asynchronous).
        durable = any(durable for _, durable in batch)
        try:
            services.outcomes_record(outcomes=[outcome for outcome, _ in batch], durable=durable)
        except Exception:
            log.exception("writing %d outcomes failed; their runs stay running and the sweep runs them again",
                          len(batch))
            connection.close()


outcomes = OutcomeBuffer()
_last_connection_check = [0.0]


def worker_started(sender=None, proc_name: str = "", **kwargs) -> None:
    """django-q2's post_spawn receiver (sent in each worker process): group commit on, and the heartbeat thread
    started now, so the cluster announces itself (and recovers a dead predecessor) before its first task."""
    outcomes.enable()
    process_heartbeat()


def skip_connection_check(now: float | None = None) -> None:
    """Run before each task: django-q2 calls `close_old_connections()`, which with CONN_HEALTH_CHECKS costs a
    `SELECT 1` round trip on the next query of every task. Check at most every CONN_CHECK_EVERY_S instead; a
    connection that fails in between marks itself errored and is checked (and replaced) before the next task."""
    now = time.monotonic() if now is None else now
    if now - _last_connection_check[0] >= jobs_settings.CONN_CHECK_EVERY_S or connection.errors_occurred:
        _last_connection_check[0] = now
        return
    connection.health_check_done = True


_heartbeats: dict[int, Heartbeat] = {}


def process_heartbeat() -> Heartbeat:
    """This process's heartbeat thread, started on first use (per pid: a forked worker starts its own)."""
    heartbeat = _heartbeats.get(os.getpid())
    if heartbeat is None or not heartbeat.is_alive():
        heartbeat = _heartbeats[os.getpid()] = Heartbeat(jobs_settings.HEARTBEAT_S, in_cluster=outcomes.in_worker)
        heartbeat.start()
    return heartbeat


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def cluster_key() -> str:
    """host:pid of this worker's django-q2 sentinel (its parent process), which names its cluster."""
    return f"{socket.gethostname()}:{os.getppid()}"


_delivery = threading.local()


def remember_task_id(sender, func=None, task=None, **kwargs) -> None:
    """django-q2's pre_execute receiver: the id of the task this worker is about to run, for the run's row."""
    _delivery.task_id = (task or {}).get("id", "")
    skip_connection_check()


def execute(run_pk: int) -> str:
    """One attempt of a run; the outcome is written on the run, the return value is for django-q2's log."""
    task_id, _delivery.task_id = getattr(_delivery, "task_id", ""), ""
    run = services.run_claim(run_pk=run_pk, worker=worker_name(), task_id=task_id,
                             cluster=cluster_key() if outcomes.in_worker else "")
    if run is None:
        return "not runnable (cancelled, finished or taken by another delivery)"
    job = registry.get(run.type)
    durable = job is None or job.durable_outcome
    outcome, status = _attempt(run, job)
    outcomes.add(outcome, durable=durable)
    return status


def _attempt(run: JobRun, job) -> tuple[Outcome, str]:
    Status = JobRun.Status
    if job is None:
        outcome = services.outcome_failed(run=run, error=f"Unknown job type {run.type!r} in this worker.",
                                          retryable=False)
        return outcome, outcome.status
    try:
        params = job.parse(run.params)
    except ValidationError as exc:
        outcome = services.outcome_failed(run=run, error=f"Parameters no longer valid for {run.type}: {exc.detail}",
                                          retryable=False)
        return outcome, outcome.status
    ctx = JobContext(run)
    heartbeat = process_heartbeat()
    heartbeat.watch(ctx)
    actor = Actor.system(display=f"job {run.type}", id=f"job:{run.pk}")
    try:
        with context.bind(RequestContext(actor=actor, tenant=run.tenant)):
            result = job.func(ctx, params)
    except JobCancelled:
        return services.outcome_cancelled(run=run), Status.CANCELLED
    except DoNotRetry as exc:
        return services.outcome_failed(run=run, error=f"{exc.__class__.__name__}: {exc}", traceback=tb.format_exc(),
                                       retryable=False), Status.FAILED
    except TimeoutException:
        outcomes.flush()  # django-q2 replaces a worker whose task timed out: nothing may stay pending
        services.outcomes_record(outcomes=[services.outcome_failed(
            run=run, error=f"Timed out after {job.timeout_s} s.", traceback=tb.format_exc())])
        raise
    except Exception as exc:
        outcome = services.outcome_failed(run=run, error=f"{exc.__class__.__name__}: {exc}",
                                          traceback=tb.format_exc())
        return outcome, outcome.status
    finally:
        heartbeat.watch(None)
    try:
        return services.outcome_succeeded(run=run, result=result), Status.SUCCEEDED
    except (TypeError, ValueError) as exc:
        return services.outcome_failed(run=run, error=f"The job's result is not JSON: {exc}",
                                       retryable=False), Status.FAILED


def fire_schedule(schedule_pk: int) -> int:
    return len(services.schedule_fire(schedule_pk=schedule_pk))


def sweep() -> dict[str, int]:
    return services.runs_sweep()
