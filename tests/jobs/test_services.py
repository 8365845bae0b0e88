"""The life of a run through the services and the worker entry point, on a hand-moved clock."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.core.context import Actor
from apps.core.errors import ConflictError
from apps.jobs import runner, services
from apps.jobs.backoff import retry_delay_s
from apps.jobs.models import JobRun
from tests.jobs.factories import JobRunFactory

pytestmark = pytest.mark.django_db
OPERATOR = Actor(kind="user", id="7", display="olga")


def submit(tenant, job_type="test.echo", params=None, **kwargs) -> JobRun:
    return services.job_submit(job_type=job_type, params={"count": 3} if params is None else params, tenant=tenant,
                               **kwargs)


def test_submit_validates_params_and_queues_nothing_when_invalid(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationError) as exc:
        submit(tenant_a, params={"count": 0, "colour": "red"})
    assert set(exc.value.detail) == {"colour"}  # unknown fields are refused before anything else
    with pytest.raises(ValidationError) as exc:
        submit(tenant_a, params={"count": 0})
    assert "count" in exc.value.detail
    assert not callbacks
    assert not JobRun.objects.exists()


def test_unknown_type_is_a_field_error(tenant_a):
    with pytest.raises(ValidationError) as exc:
        submit(tenant_a, job_type="no.such.job")
    assert "type" in exc.value.detail


def test_submit_stores_validated_params_and_the_submitter(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        run = submit(tenant_a, params={"count": 2}, submitted_by=OPERATOR)
    assert len(callbacks) == 1  # the broker message is sent only after commit
    assert run.status == "queued"
    assert run.params == {"count": 2, "label": "x", "mode": "fast"}
    assert (run.submitted_by_kind, run.submitted_by_id, run.submitted_by_display) == ("user", "7", "olga")
    assert run.max_attempts == 2


def test_idempotency_key_returns_the_existing_run(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = submit(tenant_a, idempotency_key="nightly-1")
        again = submit(tenant_a, idempotency_key="nightly-1", params={"count": 9})
    assert again.pk == first.pk
    assert len(callbacks) == 1
    assert submit(tenant_b, idempotency_key="nightly-1").pk != first.pk  # keys are per tenant
    with pytest.raises(ConflictError):
        submit(tenant_a, job_type="test.noop", params={}, idempotency_key="nightly-1")


def test_a_run_succeeds_with_result_progress_worker_and_task_id(tenant_a, run_attempt):
    from django_q.signals import pre_execute

    pre_execute.send(sender="django_q", func=None, task={"id": "q2-task-1"})  # as the worker does
    run = run_attempt(submit(tenant_a))
    assert run.task_id == "q2-task-1"
    assert run.status == "succeeded"
    assert run.result == {"echo": {"count": 3, "label": "x", "mode": "fast"}, "tenant": "tenant-a"}
    assert run.progress == 100 and run.attempts == 1
    assert run.worker.endswith(f":{__import__('os').getpid()}")
    assert run.started_at <= run.finished_at and run.lease_expires_at is None


def test_jobs_write_audit_events_as_the_system_with_their_run_id(tenant_a, run_attempt):
    run = run_attempt(submit(tenant_a, job_type="test.audits", params={}))
    event = AuditEvent.objects.get(action="test.job_did_something")
    assert (event.actor_kind, event.actor_id, event.actor_display) == ("system", f"job:{run.pk}", "job test.audits")
    assert event.tenant == tenant_a


def test_backoff_is_exponential_with_full_jitter_and_capped(max_random):
    delays = [retry_delay_s(attempt=n, base_s=10, max_s=60, rng=max_random) for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]
    assert all(low == 0 for low, _ in max_random.calls)  # full jitter: anywhere from zero to the ceiling


@override_settings(BULWARK={"JOBS": {"RETRY_BASE_DELAY_S": 10, "RETRY_MAX_DELAY_S": 900}})
def test_failed_attempts_are_retried_after_backoff_until_max_attempts(tenant_a, max_random):
    run = submit(tenant_a, job_type="test.flaky", params={})
    now = timezone.now()
    for attempt, expected_delay_s in [(1, 10), (2, 20)]:
        claimed = services.run_claim(run_pk=run.pk, worker="w:1", now=now)
        assert claimed.attempts == attempt
        outcome = services.outcome_failed(run=claimed, error="RuntimeError: x", now=now, rng=max_random)
        assert services.outcome_record(outcome, run=claimed)
        status = outcome.status
        run.refresh_from_db()
        assert status == run.status == "retrying"
        assert run.next_attempt_at == now + timedelta(seconds=expected_delay_s)
        # Not due yet: the sweep leaves it alone; once due it is queued and delivered again.
        assert services.runs_sweep(now=now + timedelta(seconds=expected_delay_s - 1))["retried"] == 0
        now += timedelta(seconds=expected_delay_s)
        assert services.runs_sweep(now=now)["retried"] == 1
        run.refresh_from_db()
        assert run.status == "queued"
    claimed = services.run_claim(run_pk=run.pk, worker="w:1", now=now)
    outcome = services.outcome_failed(run=claimed, error="RuntimeError: x", now=now, rng=max_random)
    assert services.outcome_record(outcome, run=claimed) and outcome.status == JobRun.Status.FAILED
    run.refresh_from_db()
    assert run.attempts == 3 and run.finished_at == now
    assert "gave up after 3 of 3 attempts" in run.error


def test_a_raising_job_records_error_and_traceback_then_retries(tenant_a, run_attempt):
    run = run_attempt(submit(tenant_a, job_type="test.flaky", params={}))
    assert run.status == "retrying"
    assert run.error == "RuntimeError: dependency unavailable"
    assert "Traceback" in run.traceback and "flaky" in run.traceback


def test_do_not_retry_fails_at_once(tenant_a, run_attempt):
    run = run_attempt(submit(tenant_a, job_type="test.permanent", params={}))
    assert run.status == "failed" and run.attempts == 1 and run.max_attempts == 3
    assert run.error == "DoNotRetry: the object is gone"


def test_cancel_a_queued_run_before_it_starts(tenant_a):
    run = services.run_cancel(run=submit(tenant_a), actor=OPERATOR)
    assert run.status == "cancelled" and run.finished_at is not None
    assert runner.execute(run.pk).startswith("not runnable")
    run.refresh_from_db()
    assert run.status == "cancelled" and run.attempts == 0
    event = AuditEvent.objects.get(action="jobs.cancel")
    assert (event.actor_id, event.object_id, event.tenant) == ("7", str(run.pk), tenant_a)


def test_cancel_a_running_run_stops_it_at_its_next_progress_report(tenant_a):
    run = services.run_claim(run_pk=submit(tenant_a, job_type="test.steps", params={"steps": 3, "step_s": 0}).pk,
                             worker="w:1")
    services.run_cancel(run=run, actor=OPERATOR)
    run.refresh_from_db()
    assert run.status == "running" and run.cancel_requested
    ctx = runner.JobContext(run)
    from apps.core.job_types import JobCancelled

    with pytest.raises(JobCancelled):
        ctx.progress(10, "still going")
    assert services.outcome_record(services.outcome_cancelled(run=run), run=run)
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_cancelling_a_finished_run_is_a_conflict(tenant_a):
    run = JobRunFactory(tenant=tenant_a, status="succeeded")
    with pytest.raises(ConflictError):
        services.run_cancel(run=run, actor=OPERATOR)
    assert not AuditEvent.objects.filter(action="jobs.cancel").exists()


def test_retry_submits_a_new_linked_run_and_is_audited(tenant_a):
    failed = JobRunFactory(tenant=tenant_a, type="test.echo", params={"count": 1}, status="failed")
    new_run = services.run_retry(run=failed, actor=OPERATOR)
    assert new_run.pk != failed.pk and new_run.retry_of == failed and new_run.status == "queued"
    assert new_run.submitted_by_display == "olga"
    event = AuditEvent.objects.get(action="jobs.retry")
    assert event.changes == {"type": "test.echo", "new_run": new_run.pk} and event.object_id == str(failed.pk)
    with pytest.raises(ConflictError):
        services.run_retry(run=new_run, actor=OPERATOR)


def test_an_expired_lease_is_reaped_and_retried_with_a_clear_reason(tenant_a, max_random):
    run = submit(tenant_a, job_type="test.steps", params={"steps": 1, "step_s": 0})
    now = timezone.now()
    claimed = services.run_claim(run_pk=run.pk, worker="host:4242", now=now)
    assert services.runs_sweep(now=now + timedelta(seconds=30))["orphaned"] == 0  # lease still held
    assert services.runs_sweep(now=now + timedelta(seconds=61), rng=max_random)["orphaned"] == 1
    run.refresh_from_db()
    assert run.status == "retrying" and run.attempts == 1
    assert "Worker host:4242 stopped heartbeating" in run.error
    # The reaped attempt wakes up later (a paused process): it can no longer finish the run.
    assert services.outcome_record(services.outcome_succeeded(run=claimed, result={"late": True}), run=claimed) is False
    run.refresh_from_db()
    assert run.status == "retrying"


def test_an_orphan_without_attempts_left_is_failed(tenant_a):
    run = submit(tenant_a, job_type="test.noop", params={})
    now = timezone.now()
    services.run_claim(run_pk=run.pk, worker="host:1", now=now)
    services.runs_sweep(now=now + timedelta(minutes=5))
    run.refresh_from_db()
    assert run.status == "failed" and "stopped heartbeating" in run.error and "1 of 1" in run.error


def test_heartbeat_and_progress_extend_the_lease(tenant_a):
    run = submit(tenant_a, job_type="test.noop", params={})
    now = timezone.now()
    claimed = services.run_claim(run_pk=run.pk, worker="host:1", now=now)
    services.run_heartbeat(run=claimed, now=now + timedelta(seconds=50))
    assert services.runs_sweep(now=now + timedelta(seconds=100))["orphaned"] == 0
    services.run_progress(run=claimed, percent=150, message="m", now=now + timedelta(seconds=100))
    run.refresh_from_db()
    assert run.progress == 100  # clamped
    assert services.runs_sweep(now=now + timedelta(seconds=159))["orphaned"] == 0
    assert services.runs_sweep(now=now + timedelta(seconds=161))["orphaned"] == 1


def test_lost_deliveries_are_sent_again(tenant_a, broker_messages):
    run = submit(tenant_a)
    now = timezone.now()
    # A Redis broker forgets a message whose worker died after popping it: after REDELIVER_AFTER_S a run
    # still queued is sent again (the atomic claim makes a duplicate harmless).
    assert services.runs_sweep(now=now + timedelta(seconds=60))["redelivered"] == 0
    assert services.runs_sweep(now=now + timedelta(seconds=901))["redelivered"] == 1
    assert broker_messages() == [run.pk]
    assert services.runs_sweep(now=now + timedelta(seconds=960))["redelivered"] == 0


def test_a_broker_failure_at_submit_is_redelivered_by_the_sweep_and_marks_degraded(tenant_a, monkeypatch,
                                                                                     broker_messages):
    from apps.core import health

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("django_q.tasks.async_task", broken)
    run = submit(tenant_a)
    assert services.run_deliver(run_pk=run.pk, job_type=run.type) is None
    run.refresh_from_db()
    assert run.status == JobRun.Status.QUEUED and run.enqueued_at is None
    assert "jobs.broker" in health.degraded_components()
    monkeypatch.undo()
    assert services.runs_sweep(now=timezone.now() + timedelta(seconds=31))["redelivered"] == 1
    assert broker_messages() == [run.pk] and "jobs.broker" not in health.degraded_components()


def test_retention_deletes_only_old_finished_runs_of_the_tenant(tenant_a, tenant_b):
    old = timezone.now() - timedelta(days=40)
    gone = JobRunFactory(tenant=tenant_a, status="succeeded", finished_at=old)
    JobRunFactory(tenant=tenant_a, status="queued", queued_at=old)
    JobRunFactory(tenant=tenant_a, status="failed", finished_at=timezone.now())
    JobRunFactory(tenant=tenant_b, status="succeeded", finished_at=old)
    deleted = services.runs_purge(tenant=tenant_a, older_than=timezone.now() - timedelta(days=30))
    assert deleted == 1 and not JobRun.objects.filter(pk=gone.pk).exists()
    assert JobRun.objects.count() == 3
    event = AuditEvent.objects.get(action="jobs.retention")
    assert event.tenant == tenant_a and event.changes["deleted"] == 1


def test_the_retention_job_type_runs_as_an_audited_system_operation(tenant_a, run_attempt):
    JobRunFactory(tenant=tenant_a, status="succeeded", finished_at=timezone.now() - timedelta(days=3))
    run = run_attempt(submit(tenant_a, job_type="jobs.retention", params={"older_than_days": 2}))
    assert run.status == "succeeded" and run.result["deleted"] == 1
    event = AuditEvent.objects.get(action="jobs.retention")
    assert (event.actor_kind, event.actor_id) == ("system", f"job:{run.pk}")


def test_a_timed_out_attempt_is_recorded_then_the_worker_is_let_go(tenant_a):
    from django_q.exceptions import TimeoutException

    run = submit(tenant_a, job_type="test.times_out", params={})
    with pytest.raises(TimeoutException):  # django-q2 must still see it, to replace the worker
        runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == "retrying" and run.error == "Timed out after 1 s."


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_renews_the_lease_and_notices_a_cancel(tenant_a):
    run = services.run_claim(run_pk=submit(tenant_a, job_type="test.noop", params={}).pk, worker="w:1")
    first_lease = run.lease_expires_at
    ctx = runner.JobContext(run)
    heartbeat = runner.Heartbeat(interval_s=0.05)
    heartbeat.start()
    heartbeat.watch(ctx)
    try:
        import time

        time.sleep(0.3)
        run.refresh_from_db()
        assert run.lease_expires_at > first_lease
        assert not ctx.cancel_requested.is_set()
        JobRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        deadline = time.monotonic() + 5
        while not ctx.cancel_requested.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctx.cancel_requested.is_set()
        heartbeat.watch(None)  # the attempt ended: no more renewals
        run.refresh_from_db()
        lease = run.lease_expires_at
        time.sleep(0.2)
        run.refresh_from_db()
        assert run.lease_expires_at == lease
    finally:
        heartbeat.stop()
    assert not heartbeat.is_alive()


def test_an_orphan_whose_cancel_was_requested_is_cancelled_not_retried(tenant_a):
    run = submit(tenant_a, job_type="test.flaky", params={})
    now = timezone.now()
    claimed = services.run_claim(run_pk=run.pk, worker="host:1", now=now)
    services.run_cancel(run=claimed, actor=OPERATOR)
    assert services.runs_sweep(now=now + timedelta(minutes=5))["orphaned"] == 1
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None


def test_a_result_that_is_not_json_fails_the_run_without_retry(tenant_a, run_attempt):
    run = run_attempt(submit(tenant_a, job_type="test.bad_result", params={}))
    assert run.status == "failed" and run.error.startswith("The job's result is not JSON")


def test_a_run_of_a_type_this_worker_does_not_know_fails_clearly(tenant_a):
    run = JobRunFactory(tenant=tenant_a, type="gone.type", status="queued", attempts=0, max_attempts=3)
    assert runner.execute(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "Unknown job type 'gone.type'" in run.error
