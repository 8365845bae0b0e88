"""Round trips of the submit path and the worker path, pinned: each one costs a job throughput under load."""
from __future__ import annotations

import pytest
from django.db import connection

from apps.core.context import Actor
from apps.jobs import runner, services
from apps.jobs.models import JobRun

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system(display="test")


def test_a_submission_is_one_insert(tenant_a, django_assert_num_queries):
    with django_assert_num_queries(1):
        run = services.job_submit(job_type="test.noop", params={}, tenant=tenant_a, submitted_by=SYSTEM)
    assert JobRun.objects.get(pk=run.pk).status == "queued"


def test_a_claim_is_one_statement_that_brings_the_run_and_its_tenant(tenant_a, django_assert_num_queries):
    run = services.job_submit(job_type="test.echo", params={"count": 2}, tenant=tenant_a, submitted_by=SYSTEM)
    tenant_queries = 0 if connection.vendor == "postgresql" else 1  # SQLite cannot join it into the UPDATE
    with django_assert_num_queries(1 + tenant_queries):
        claimed = services.run_claim(run_pk=run.pk, worker="host:1", task_id="t-1")
        assert claimed.tenant == tenant_a and claimed.tenant.slug == tenant_a.slug
    assert (claimed.status, claimed.attempts, claimed.worker, claimed.task_id) == ("running", 1, "host:1", "t-1")
    assert claimed.params == run.params and claimed.params["count"] == 2 and claimed.started_at is not None and claimed.lease_expires_at
    assert claimed.started_at == JobRun.objects.get(pk=run.pk).started_at
    assert services.run_claim(run_pk=run.pk, worker="host:2") is None  # the second delivery finds it taken


def test_a_no_op_run_costs_the_worker_two_statements(tenant_a, django_assert_num_queries):
    run = services.job_submit(job_type="test.noop", params={}, tenant=tenant_a, submitted_by=SYSTEM)
    # PostgreSQL: the claim, and the outcome with its attempt row. SQLite: the claim, the tenant, and the
    # outcome as one transaction of three small statements (and the test's savepoint around it).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 7):
        assert runner.execute(run.pk) == "succeeded"
    assert JobRun.objects.get(pk=run.pk).status == "succeeded"


def test_progress_reported_inside_a_jobs_transaction_keeps_that_transaction_durable(tenant_a):
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    run = services.job_submit(job_type="test.noop", params={}, tenant=tenant_a, submitted_by=SYSTEM)
    claimed = services.run_claim(run_pk=run.pk, worker="host:1")
    # The test runs inside a transaction, as a job's own atomic block would: a progress report in it must
    # not switch that transaction's commit to asynchronous.
    assert services.run_progress(run=claimed, percent=50, message="half") is False
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert JobRun.objects.get(pk=run.pk).progress == 50


def test_a_progress_report_is_one_statement_that_renews_the_lease_and_sees_a_cancel(
        tenant_a, django_assert_num_queries):
    from datetime import timedelta

    from django.utils import timezone

    run = services.job_submit(job_type="test.noop", params={}, tenant=tenant_a, submitted_by=SYSTEM)
    now = timezone.now()
    claimed = services.run_claim(run_pk=run.pk, worker="host:1", now=now)
    statements = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(statements):
        assert services.run_progress(run=claimed, percent=140, message="x" * 300, now=now + timedelta(seconds=5)) \
            is False
    stored = JobRun.objects.get(pk=run.pk)
    assert (stored.progress, stored.progress_message) == (100, "x" * 200)
    assert stored.lease_expires_at > claimed.lease_expires_at
    JobRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    with django_assert_num_queries(statements):
        assert services.run_heartbeat(run=claimed) is True
    # A superseded attempt renews nothing.
    JobRun.objects.filter(pk=run.pk).update(attempts=2)
    before = JobRun.objects.get(pk=run.pk).lease_expires_at
    services.run_progress(run=claimed, percent=10, now=now + timedelta(seconds=30))
    assert JobRun.objects.get(pk=run.pk).lease_expires_at == before
    assert JobRun.objects.get(pk=run.pk).progress == 100
