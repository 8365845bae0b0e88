"""Real `manage.py qcluster` processes: a whole cluster SIGKILLed, a hard stop, and a worker killed between
finishing a job and group-committing its outcome.

A cluster's pusher pulls messages into the cluster's memory before any worker claims them; killing the whole
process group loses them with it. The next cluster to start finds the dead one (same host, process gone)
and delivers its queued runs again at once, on both brokers, not after REDELIVER_AFTER_S (900 s).
"""
from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings
from django.test import override_settings
from django_q.conf import Conf

from apps.jobs import services
from apps.jobs.models import JobAttempt, JobCluster, JobRun
from tests.factories import TenantFactory
from tests.jobs.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the cluster subprocesses need a database they can share with the test (PostgreSQL)",
)]
Status = JobRun.Status
EndedHow = JobAttempt.EndedHow
FAST_RETRY = {"RETRY_BASE_DELAY_S": 0.1, "RETRY_MAX_DELAY_S": 0.1}


@pytest.fixture
def on_broker(monkeypatch):
    """use(broker): this process enqueues on the same broker as the clusters it starts; purged."""

    def use(broker: str) -> None:
        if broker == "redis":
            if not os.environ.get("REDIS_URL"):
                pytest.skip("needs Redis (set REDIS_URL)")
        else:
            monkeypatch.setattr(Conf, "ORM", "default")
        from django_q.brokers import get_broker

        get_broker().purge_queue()

    return use


def sweep_until(predicate, timeout_s: float, what: str, counts: dict[str, int]):
    """Run the sweep (the `jobs.reap` schedule, off in the test clusters) until predicate() holds."""

    def check():
        with override_settings(BULWARK={"JOBS": FAST_RETRY}):
            for key, value in services.runs_sweep().items():
                counts[key] = counts.get(key, 0) + value
        return predicate()

    return wait_for(check, timeout_s, what)


@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_a_sigkilled_clusters_queued_runs_are_delivered_again_by_the_next_cluster(broker, on_broker, qcluster):
    on_broker(broker)
    tenant = TenantFactory(slug=f"dead-cluster-{broker}")
    runs = [services.job_submit(job_type="test.steps", params={"steps": 4, "step_s": 0.5}, tenant=tenant)
            for _ in range(8)]
    first = qcluster(broker, workers=2, jobs=FAST_RETRY)
    wait_for(lambda: JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.RUNNING).count() == 2, 60,
             "two runs to start")
    key = wait_for(lambda: JobCluster.objects.values_list("key", flat=True).first(), 30, "the cluster's beat")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    queued = JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.QUEUED, attempts=0).count()
    assert queued == 6
    time.sleep(0.5)

    second = qcluster(broker, workers=2, jobs=FAST_RETRY)
    counts: dict[str, int] = {}
    sweep_until(lambda: JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.SUCCEEDED).count() == 8,
                120, "every run to succeed after the restart", counts)
    assert second.poll() is None
    # The queued runs came back through the recovery of the dead cluster, not the 15-minute redelivery.
    assert counts.get("redelivered", 0) == 0
    assert not JobCluster.objects.filter(key=key).exists()
    finished = JobRun.objects.filter(pk__in=[r.pk for r in runs])
    assert sorted(r.attempts for r in finished) == [1] * 6 + [2] * 2
    killed = [r for r in finished if r.attempts == 2]
    for run in killed:
        assert list(run.attempt_history.values_list("ended_how", flat=True)) == [EndedHow.LEASE_EXPIRED,
                                                                                  EndedHow.FINISHED]


def test_terminate_ends_a_job_that_ignores_cancel_after_the_grace_period(on_broker, qcluster):
    on_broker("redis")
    tenant = TenantFactory(slug="terminate")
    run = services.job_submit(job_type="test.steps", params={"steps": 3, "step_s": 5}, tenant=tenant)
    cluster = qcluster("redis", jobs={"TERMINATE_GRACE_S": 0.5})
    running = wait_for(lambda: JobRun.objects.filter(pk=run.pk, status=Status.RUNNING).first(), 60,
                       "the run to start")
    worker_pid = int(running.worker.rsplit(":", 1)[1])
    services.run_terminate(run=running)
    # The job sleeps 5 s between progress reports, so only the hard stop can end it within the wait.
    ended = wait_for(lambda: JobRun.objects.filter(pk=run.pk, status=Status.CANCELLED).first(), 4.5,
                     "the hard stop")
    assert ended.attempt_history.get().ended_how == EndedHow.TERMINATED
    wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}") or _zombie(worker_pid), 10, "the worker to die")
    assert cluster.poll() is None
    after = services.job_submit(job_type="test.noop", params={}, tenant=tenant)
    wait_for(lambda: JobRun.objects.filter(pk=after.pk, status=Status.SUCCEEDED).exists(), 60,
             "a fresh worker to run the next job")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_worker_killed_before_its_group_commit_leaves_the_run_to_the_sweep(on_broker, qcluster):
    on_broker("redis")
    tenant = TenantFactory(slug="group-commit")
    # A batch is written when it holds two outcomes (the window is ten minutes).
    qcluster("redis", jobs={"OUTCOME_BATCH_MS": 600_000, "OUTCOME_BATCH_MAX": 2, **FAST_RETRY})
    run = services.job_submit(job_type="test.steps", params={"steps": 1, "step_s": 0}, tenant=tenant)
    wait_for(lambda: JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, progress=100).exists(), 60,
             "the job to finish (its progress says so)")
    # Its outcome waits in the worker, whose heartbeat keeps the lease (2 s) alive meanwhile.
    time.sleep(3)
    assert services.runs_sweep()["orphaned"] == 0
    assert JobRun.objects.get(pk=run.pk).status == Status.RUNNING
    # Killed while busy with the next job (an idle django-q2 worker killed in its queue read would take the
    # cluster's task queue lock with it, a limit of multiprocessing queues, not of this app).
    slow = services.job_submit(job_type="test.steps", params={"steps": 1, "step_s": 3}, tenant=tenant)
    busy = wait_for(lambda: JobRun.objects.filter(pk=slow.pk, status=Status.RUNNING).first(), 60,
                    "the next job to start")
    os.kill(int(busy.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    counts: dict[str, int] = {}
    sweep_until(lambda: JobRun.objects.filter(pk__in=[run.pk, slow.pk], status=Status.SUCCEEDED).count() == 2,
                90, "both runs to run again and their batch of two to be committed", counts)
    assert counts["orphaned"] == 2
    for each in (run, slow):
        assert list(JobRun.objects.get(pk=each.pk).attempt_history.values_list("ended_how", flat=True)) == [
            EndedHow.LEASE_EXPIRED, EndedHow.FINISHED]
