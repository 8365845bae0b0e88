"""The worker's statements in `JobRunQuerySet`: claim, renew and group-committed outcomes.

Written for every database Bulwark runs on: run this file on PostgreSQL (DATABASE_URL set) and on the
embedded SQLite default (DATABASE_URL unset); the statements differ, the behaviour must not.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.jobs import services
from apps.jobs.models import JobAttempt, JobRun, Outcome
from tests.jobs.factories import JobRunFactory

pytestmark = pytest.mark.django_db
Status = JobRun.Status
EndedHow = JobAttempt.EndedHow
POSTGRESQL = connection.vendor == "postgresql"


def queued(tenant, **kwargs) -> JobRun:
    return JobRunFactory(tenant=tenant, status=Status.QUEUED, attempts=0, max_attempts=3, **kwargs)


def test_claim_takes_a_queued_run_once_and_returns_it_with_its_tenant(tenant_a, django_assert_num_queries):
    run = queued(tenant_a, params={"a": [1, 2]})
    now = timezone.now()
    # One statement on PostgreSQL, the tenant included; SQLite loads the tenant when first used.
    with django_assert_num_queries(1):
        claimed = JobRun.objects.claim(pk=run.pk, worker="host-1:42", task_id="t1", cluster="host-1:40", now=now,
                                       lease_until=now + timedelta(seconds=60))
        if POSTGRESQL:
            assert claimed.tenant.slug == tenant_a.slug
    assert claimed.tenant == tenant_a and claimed.tenant.created_at == tenant_a.created_at
    assert claimed.status == Status.RUNNING and claimed.attempts == 1
    assert claimed.params == {"a": [1, 2]} and claimed.started_at == now  # converted like any ORM read
    assert JobRun.objects.claim(pk=run.pk, worker="host-2:1", task_id="t2", now=now, lease_until=now) is None
    run.refresh_from_db()
    assert (run.worker, run.task_id, run.cluster, run.lease_expires_at) == (
        "host-1:42", "t1", "host-1:40", now + timedelta(seconds=60))


def test_claim_binds_its_parameters(tenant_a):
    # Quotes and SQL in a worker name are stored as text, never run.
    run = queued(tenant_a)
    now = timezone.now()
    name = "h'; UPDATE bulwark_jobs_jobrun SET status = 'failed'; --:1"
    assert JobRun.objects.claim(pk=run.pk, worker=name, task_id="%(pk)s", now=now, lease_until=now)
    run.refresh_from_db()
    assert run.worker == name and run.task_id == "%(pk)s" and run.status == Status.RUNNING


def test_renew_extends_the_lease_records_progress_and_reads_operator_requests(tenant_a):
    now = timezone.now()
    run = JobRunFactory(tenant=tenant_a, status=Status.RUNNING, attempts=2, lease_expires_at=now)
    later = now + timedelta(seconds=90)
    assert JobRun.objects.renew(pk=run.pk, attempts=2, lease_until=later, progress=40, message="it's 40%") == (
        False, None)
    run.refresh_from_db()
    assert (run.lease_expires_at, run.progress, run.progress_message) == (later, 40, "it's 40%")
    # A plain heartbeat keeps the progress; a stale attempt (1) renews nothing.
    JobRun.objects.filter(pk=run.pk).update(cancel_requested=True, terminate_requested_at=now)
    assert JobRun.objects.renew(pk=run.pk, attempts=2, lease_until=later + timedelta(seconds=1)) == (True, now)
    assert JobRun.objects.renew(pk=run.pk, attempts=1, lease_until=later + timedelta(seconds=99))[0] is True
    run.refresh_from_db()
    assert (run.lease_expires_at, run.progress) == (later + timedelta(seconds=1), 40)


@pytest.mark.parametrize("durable", [True, False])
def test_outcomes_of_many_runs_are_written_together_fenced_and_kept_as_attempts(tenant_a, durable):
    now = timezone.now()
    started = now - timedelta(seconds=3)
    runs = [JobRunFactory(tenant=tenant_a, status=Status.RUNNING, attempts=1, max_attempts=2, worker=f"h:{i}",
                          started_at=started, progress=30) for i in range(4)]
    outcomes = [
        Outcome(run_pk=runs[0].pk, attempts=1, status=Status.SUCCEEDED, ended_how=EndedHow.FINISHED, ended_at=now,
                result_json='{"ok": true}'),
        Outcome(run_pk=runs[1].pk, attempts=1, status=Status.RETRYING, ended_how=EndedHow.FAILED, ended_at=now,
                error="boom", traceback="Traceback ...", next_attempt_at=now + timedelta(seconds=10)),
        Outcome(run_pk=runs[2].pk, attempts=1, status=Status.CANCELLED, ended_how=EndedHow.CANCELLED, ended_at=now,
                error="Cancelled while running."),
        # An attempt that lost its run (reaped, retried as attempt 2) changes nothing.
        Outcome(run_pk=runs[3].pk, attempts=0, status=Status.SUCCEEDED, ended_how=EndedHow.FINISHED, ended_at=now,
                result_json="1"),
    ]
    with CaptureQueriesContext(connection) as statements:
        done = JobRun.objects.record_outcomes(outcomes, durable=durable)
    if POSTGRESQL:  # one statement, one commit (SQLite: one transaction of small statements)
        assert len(statements) == 1
    assert done == {runs[0].pk, runs[1].pk, runs[2].pk}
    for run in runs:
        run.refresh_from_db()
    assert (runs[0].status, runs[0].result, runs[0].progress, runs[0].finished_at) == (
        Status.SUCCEEDED, {"ok": True}, 100, now)
    assert (runs[1].status, runs[1].finished_at, runs[1].next_attempt_at, runs[1].error, runs[1].progress) == (
        Status.RETRYING, None, now + timedelta(seconds=10), "boom", 30)
    assert runs[2].status == Status.CANCELLED and runs[2].lease_expires_at is None
    assert runs[3].status == Status.RUNNING and runs[3].result is None
    attempts = {a.run_id: a for a in JobAttempt.objects.all()}
    assert set(attempts) == done
    assert (attempts[runs[1].pk].number, attempts[runs[1].pk].worker, attempts[runs[1].pk].started_at,
            attempts[runs[1].pk].ended_at, attempts[runs[1].pk].outcome, attempts[runs[1].pk].ended_how,
            attempts[runs[1].pk].traceback) == (1, "h:1", started, now, Status.RETRYING, EndedHow.FAILED,
                                                "Traceback ...")


def test_a_worker_round_trip_through_the_services(tenant_a, run_attempt):
    run = run_attempt(services.job_submit(job_type="test.echo", params={"count": 2}, tenant=tenant_a))
    assert run.status == Status.SUCCEEDED and run.result == {"echo": {"count": 2, "label": "x", "mode": "fast"},
                                                              "tenant": tenant_a.slug}
    assert list(run.attempt_history.values_list("number", "ended_how")) == [(1, EndedHow.FINISHED)]
