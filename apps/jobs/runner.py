"""What django-q2 workers call: run one attempt of a job (with heartbeat and context), fire a schedule, sweep."""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback as tb

from django.db import connection
from django_q.exceptions import TimeoutException
from rest_framework.exceptions import ValidationError

from apps.core import context
from apps.core.context import Actor, RequestContext
from apps.jobs import services
from apps.jobs.conf import jobs_settings
from apps.jobs.models import JobRun
from apps.jobs.registry import DoNotRetry, JobCancelled, registry

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

    def __init__(self, interval_s: float) -> None:
        super().__init__(name="jobs-heartbeat", daemon=True)
        self.interval_s = interval_s
        self.current: JobContext | None = None
        self.stopped = threading.Event()

    def watch(self, ctx: JobContext | None) -> None:
        self.current = ctx

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                ctx = self.current
                if ctx is None:
                    continue
                try:
                    # A beat for an attempt that just ended changes nothing: renewals are fenced by attempt.
                    if services.run_heartbeat(run=ctx.run):
                        ctx.cancel_requested.set()
                except Exception:
                    log.exception("heartbeat of run %s failed; retrying at the next beat", ctx.run.pk)
                finally:
                    connection.close()  # one beat every few seconds: no idle connection held between them
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


_heartbeats: dict[int, Heartbeat] = {}


def process_heartbeat() -> Heartbeat:
    """This process's heartbeat thread, started on first use (per pid: a forked worker starts its own)."""
    heartbeat = _heartbeats.get(os.getpid())
    if heartbeat is None or not heartbeat.is_alive():
        heartbeat = _heartbeats[os.getpid()] = Heartbeat(jobs_settings.HEARTBEAT_S)
        heartbeat.start()
    return heartbeat


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_delivery = threading.local()


def remember_task_id(sender, func=None, task=None, **kwargs) -> None:
    """django-q2's pre_execute receiver: the id of the task this worker is about to run, for the run's row."""
    _delivery.task_id = (task or {}).get("id", "")


def execute(run_pk: int) -> str:
    """One attempt of a run; the outcome is written on the run, the return value is for django-q2's log."""
    task_id, _delivery.task_id = getattr(_delivery, "task_id", ""), ""
    run = services.run_claim(run_pk=run_pk, worker=worker_name(), task_id=task_id)
    if run is None:
        return "not runnable (cancelled, finished or taken by another delivery)"
    job = registry.get(run.type)
    if job is None:
        services.run_attempt_failed(run=run, error=f"Unknown job type {run.type!r} in this worker.", retryable=False)
        return "failed"
    try:
        params = job.parse(run.params)
    except ValidationError as exc:
        services.run_attempt_failed(run=run, error=f"Parameters no longer valid for {run.type}: {exc.detail}",
                                    retryable=False)
        return "failed"
    ctx = JobContext(run)
    heartbeat = process_heartbeat()
    heartbeat.watch(ctx)
    actor = Actor.system(display=f"job {run.type}", id=f"job:{run.pk}")
    try:
        with context.bind(RequestContext(actor=actor, tenant=run.tenant)):
            result = job.func(ctx, params)
    except JobCancelled:
        services.run_cancelled(run=run)
        return "cancelled"
    except DoNotRetry as exc:
        services.run_attempt_failed(run=run, error=f"{exc.__class__.__name__}: {exc}", traceback=tb.format_exc(),
                                    retryable=False)
        return "failed"
    except TimeoutException:
        services.run_attempt_failed(run=run, error=f"Timed out after {job.timeout_s} s.", traceback=tb.format_exc())
        raise  # django-q2 replaces a worker whose task timed out
    except Exception as exc:
        return services.run_attempt_failed(run=run, error=f"{exc.__class__.__name__}: {exc}",
                                           traceback=tb.format_exc()) or "superseded"
    finally:
        heartbeat.watch(None)
    try:
        services.run_succeeded(run=run, result=result)
    except (TypeError, ValueError) as exc:
        services.run_attempt_failed(run=run, error=f"The job's result is not JSON: {exc}", retryable=False)
        return "failed"
    return "succeeded"


def fire_schedule(schedule_pk: int) -> int:
    return len(services.schedule_fire(schedule_pk=schedule_pk))


def sweep() -> dict[str, int]:
    return services.runs_sweep()
