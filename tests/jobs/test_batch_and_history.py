"""Batch submission, the history of every attempt, search by worker host, hard stops, and the worker's
per-task savings (group commit, connection check), in this process."""
from __future__ import annotations

import types
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.core.context import Actor
from apps.jobs import runner, services
from apps.jobs.models import JobAttempt, JobCluster, JobRun
from tests.jobs.factories import JobRunFactory

pytestmark = pytest.mark.django_db
Status = JobRun.Status
EndedHow = JobAttempt.EndedHow
LIST = "/api/v1/jobs/"
SYSTEM = Actor.system(display="test")


def submissions(tenant, *params, job_type="test.echo", key=None):
    return [services.Submission(job_type=job_type, params=p, tenant=tenant, idempotency_key=key) for p in params]


@pytest.fixture(params=["redis", "orm"])
def broker(request, monkeypatch):
    from django_q.conf import Conf

    if request.param == "orm":
        monkeypatch.setattr(Conf, "ORM", "default")
    elif Conf.ORM:
        pytest.skip("needs Redis (set REDIS_URL)")
    return request.param


def test_submit_many_is_one_insert_and_one_push(broker, tenant_a, tenant_b, broker_messages,
                                                django_capture_on_commit_callbacks):
    with CaptureQueriesContext(connection) as statements, django_capture_on_commit_callbacks(execute=True):
        runs = services.job_submit_many(
            submissions=submissions(tenant_a, {"count": 1}, {"count": 2}) + submissions(tenant_b, {"count": 3}),
            submitted_by=SYSTEM)
    inserts = [q["sql"] for q in statements.captured_queries if q["sql"].startswith("INSERT")]
    # The runs' INSERT, and on the ORM broker one INSERT of its three queue rows.
    assert len(inserts) == (1 if broker == "redis" else 2)
    assert [(r.tenant, r.params["count"], r.status) for r in runs] == [
        (tenant_a, 1, Status.QUEUED), (tenant_a, 2, Status.QUEUED), (tenant_b, 3, Status.QUEUED)]
    assert all(r.pk and r.enqueued_at for r in runs)
    assert sorted(broker_messages()) == sorted(r.pk for r in runs)


def test_submit_many_is_all_or_nothing_with_errors_by_index(tenant_a, broker_messages):
    with pytest.raises(ValidationError) as exc:
        services.job_submit_many(submissions=submissions(tenant_a, {"count": 1}, {"count": 0}, {"colour": "red"}))
    assert set(exc.value.detail["runs"]) == {"1", "2"}
    assert "count" in exc.value.detail["runs"]["1"] and "colour" in exc.value.detail["runs"]["2"]
    assert not JobRun.objects.exists() and broker_messages() == []


def test_submit_many_answers_a_used_idempotency_key_with_the_existing_run(tenant_a, tenant_b):
    first = services.job_submit(job_type="test.noop", params={}, tenant=tenant_a, idempotency_key="tick-1")
    runs = services.job_submit_many(submissions=submissions(tenant_a, {}, job_type="test.noop", key="tick-1")
                                    + submissions(tenant_b, {}, job_type="test.noop", key="tick-1"))
    assert runs[0].pk == first.pk and runs[1].pk != first.pk and runs[1].tenant == tenant_b
    assert JobRun.objects.count() == 2


def test_batch_api_queues_all_or_answers_400_with_nothing_queued(tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    response = client.post(f"{LIST}batch/", {"runs": [{"type": "test.echo", "params": {"count": 1}},
                                                      {"type": "test.noop"}]}, format="json")
    assert response.status_code == 201, response.json()
    assert [r["type"] for r in response.json()] == ["test.echo", "test.noop"]
    assert JobRun.objects.for_tenant(tenant_a).count() == 2
    bad = client.post(f"{LIST}batch/", {"runs": [{"type": "test.noop"}, {"type": "no.such"}]}, format="json")
    assert bad.status_code == 400 and "runs" in str(bad.json())
    assert client.post(f"{LIST}batch/", {"runs": []}, format="json").status_code == 400
    assert JobRun.objects.for_tenant(tenant_a).count() == 2
    # Types that need the admin role are refused to an operator, in a batch as alone.
    admin_only = client.post(f"{LIST}batch/", {"runs": [{"type": "jobs.retention"}]}, format="json")
    assert admin_only.status_code == 400 and JobRun.objects.for_tenant(tenant_a).count() == 2
    assert token_client(tenant_a, "viewer").post(f"{LIST}batch/", {"runs": [{"type": "test.noop"}]},
                                                 format="json").status_code == 403


@override_settings(BULWARK={"JOBS": {"SUBMIT_MANY_MAX": 2}})
def test_batch_api_is_bounded(tenant_a, token_client):
    response = token_client(tenant_a, "operator").post(
        f"{LIST}batch/", {"runs": [{"type": "test.noop"}] * 3}, format="json")
    assert response.status_code == 400 and not JobRun.objects.exists()


def test_every_attempt_is_kept_lease_expiry_included_and_shown_in_the_api(tenant_a, run_attempt, token_client,
                                                                           max_random):
    run = services.job_submit(job_type="test.flaky", params={}, tenant=tenant_a)
    now = timezone.now()
    claimed = services.run_claim(run_pk=run.pk, worker="host-a:11", cluster="host-a:10", now=now)
    # The worker dies: the sweep ends the attempt as "lease expired" and keeps it.
    with override_settings(BULWARK={"JOBS": {"RETRY_BASE_DELAY_S": 1, "RETRY_MAX_DELAY_S": 1}}):
        assert services.runs_sweep(now=now + timedelta(seconds=61), rng=max_random)["orphaned"] == 1
        assert services.runs_sweep(now=now + timedelta(seconds=63))["retried"] == 1
    run = run_attempt(claimed)  # attempt 2 fails in this process
    attempts = list(run.attempt_history.all())
    assert [(a.number, a.worker, a.ended_how, a.outcome) for a in attempts] == [
        (1, "host-a:11", EndedHow.LEASE_EXPIRED, Status.RETRYING),
        (2, runner.worker_name(), EndedHow.FAILED, Status.RETRYING)]
    assert "stopped heartbeating" in attempts[0].error
    assert "dependency unavailable" in attempts[1].error and "Traceback" in attempts[1].traceback
    body = token_client(tenant_a, "viewer").get(f"{LIST}{run.pk}/").json()
    assert [(a["number"], a["ended_how"]) for a in body["attempt_history"]] == [(1, "lease_expired"),
                                                                                 (2, "failed")]


def test_runs_are_found_by_worker_host_in_the_api_and_the_admin(tenant_a, token_client, member_client):
    mine = JobRunFactory(tenant=tenant_a, worker="web-7.internal:123")
    JobRunFactory(tenant=tenant_a, worker="web-70.internal:5")
    response = token_client(tenant_a, "viewer").get(LIST, {"worker_host": "web-7.internal"})
    assert [r["id"] for r in response.json()["results"]] == [mine.pk]
    page = member_client(tenant_a, "viewer").get("/admin/bulwark_jobs/jobrun/", {"q": "web-7.internal:"})
    assert page.status_code == 200 and page.context["cl"].result_count == 1


def test_the_run_admin_page_shows_its_attempts_inline(tenant_a, member_client):
    run = JobRunFactory(tenant=tenant_a)
    JobAttempt.objects.create(run=run, number=1, worker="host-z:9", ended_at=timezone.now(),
                              outcome=Status.FAILED, ended_how=EndedHow.LEASE_EXPIRED, error="lease ran out")
    page = member_client(tenant_a, "viewer").get(f"/admin/bulwark_jobs/jobrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"host-z:9" in page.content and b"lease ran out" in page.content


def test_the_workers_page_shows_queues_and_clusters_to_superusers_only(tenant_a, member_client, admin_client):
    JobCluster.objects.create(key="host-q:77", host="host-q", pid=77)
    page = admin_client.get("/admin/bulwark_jobs/jobrun/workers/")
    assert page.status_code == 200 and b"host-q:77" in page.content and b"Queue depth" in page.content
    assert member_client(tenant_a, "admin").get("/admin/bulwark_jobs/jobrun/workers/").status_code == 403


def test_terminate_is_audited_and_only_cancels_what_is_not_running(tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    running = JobRunFactory(tenant=tenant_a, status=Status.RUNNING, worker="h:1")
    body = client.post(f"{LIST}{running.pk}/terminate/").json()
    assert body["cancel_requested"] is True and body["terminate_requested_at"]
    event = AuditEvent.objects.get(action="jobs.terminate")
    assert event.changes["worker"] == "h:1"
    waiting = JobRunFactory(tenant=tenant_a, status=Status.QUEUED)
    assert client.post(f"{LIST}{waiting.pk}/terminate/").json()["status"] == "cancelled"
    done = JobRunFactory(tenant=tenant_a, status=Status.SUCCEEDED)
    assert client.post(f"{LIST}{done.pk}/terminate/").status_code == 409
    assert token_client(tenant_a, "viewer").post(f"{LIST}{running.pk}/terminate/").status_code == 403


def test_a_dead_clusters_queued_runs_are_delivered_again_and_its_running_runs_reaped(tenant_a, broker_messages):
    now = timezone.now()
    JobCluster.objects.create(key="gone:1", host="gone", pid=1, heartbeat_at=now - timedelta(seconds=61))
    JobCluster.objects.create(key="alive:2", host="alive", pid=2, heartbeat_at=now - timedelta(seconds=5))
    held = JobRunFactory(tenant=tenant_a, status=Status.QUEUED, attempts=0, max_attempts=2,
                         enqueued_at=now - timedelta(seconds=65))
    later = JobRunFactory(tenant=tenant_a, status=Status.QUEUED, attempts=0, enqueued_at=now - timedelta(seconds=1))
    running = JobRunFactory(tenant=tenant_a, status=Status.RUNNING, attempts=1, max_attempts=2, cluster="gone:1",
                            lease_expires_at=now + timedelta(seconds=50))
    assert services.clusters_recover(now=now) == 1
    assert list(JobCluster.objects.values_list("key", flat=True)) == ["alive:2"]
    # Delivered after the dead cluster's last beat (plus one beat): it cannot have taken that one.
    assert broker_messages() == [held.pk]
    held.refresh_from_db()
    later.refresh_from_db()
    running.refresh_from_db()
    assert held.enqueued_at == now and later.enqueued_at == now - timedelta(seconds=1)
    assert running.status == Status.RETRYING
    assert running.attempt_history.get().ended_how == EndedHow.LEASE_EXPIRED
    assert services.clusters_recover(now=now) == 0


def test_a_cluster_on_this_host_whose_process_is_gone_is_recovered_at_once(tenant_a, broker_messages):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    now = timezone.now()
    JobCluster.objects.create(key=f"here:{pid}", host="here", pid=pid, heartbeat_at=now)
    held = JobRunFactory(tenant=tenant_a, status=Status.QUEUED, attempts=0, enqueued_at=now - timedelta(seconds=2))
    assert services.cluster_heartbeat(key="here:1", host="here", pid=1, now=now) == 1
    assert broker_messages() == [held.pk]
    assert list(JobCluster.objects.values_list("key", flat=True)) == ["here:1"]


@override_settings(BULWARK={"JOBS": {"OUTCOME_BATCH_MS": 60_000, "OUTCOME_BATCH_MAX": 3}})
@pytest.mark.django_db(transaction=True)
def test_a_worker_group_commits_outcomes_when_the_batch_fills(tenant_a):
    buffer = runner.OutcomeBuffer()
    buffer.enable()
    runs = [services.job_submit(job_type="test.noop", params={}, tenant=tenant_a) for _ in range(3)]
    for run in runs[:2]:
        claimed = services.run_claim(run_pk=run.pk, worker="w:1")
        buffer.add(services.outcome_succeeded(run=claimed, result=None), durable=True)
    # Two of three: still pending (the window is a minute), their runs still running under their lease.
    assert set(JobRun.objects.values_list("status", flat=True)) == {Status.RUNNING, Status.QUEUED}
    claimed = services.run_claim(run_pk=runs[2].pk, worker="w:1")
    buffer.add(services.outcome_succeeded(run=claimed, result=None), durable=True)
    deadline = timezone.now() + timedelta(seconds=10)
    while JobRun.objects.filter(status=Status.SUCCEEDED).count() < 3 and timezone.now() < deadline:
        close_old_connections()
    assert JobRun.objects.filter(status=Status.SUCCEEDED).count() == 3
    assert JobAttempt.objects.count() == 3


@pytest.mark.django_db(transaction=True)  # autocommit, as in a worker
def test_a_worker_checks_its_connection_at_most_once_per_interval(monkeypatch):
    connection.ensure_connection()
    # A worker's connection: persistent and health-checked by Django's base logic (a qcluster uses no pool;
    # this test process may, and a pooled connection skips the health check altogether).
    monkeypatch.setattr(connection, "close_at", None)
    monkeypatch.setattr(connection, "close_if_health_check_failed",
                        types.MethodType(BaseDatabaseWrapper.close_if_health_check_failed, connection))
    monkeypatch.setattr(connection, "health_check_enabled", True)
    monkeypatch.setattr(runner, "_last_connection_check", [0.0])
    checked = []
    monkeypatch.setattr(connection, "is_usable", lambda: checked.append(1) or True)
    for now in [1000.0, 1001.0, 1006.0]:
        connection.close_if_unusable_or_obsolete()  # what django-q2 calls before each task
        runner.skip_connection_check(now=now)
        with connection.cursor():  # the task's first query
            pass
    # The first task checks, the next within CONN_CHECK_EVERY_S (5 s) does not, the one after does.
    assert len(checked) == 2
