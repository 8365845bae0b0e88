"""Never lost: a real `manage.py qcluster` whose worker is SIGKILLed mid-job; the run is reaped and finishes.

On the Redis broker the killed worker's message is gone (BLPOP took it); on the ORM broker it stays locked
until `retry`. Either way the lease expires, the sweep (what the `jobs.reap` schedule runs) retries the run
and a fresh worker of the same cluster completes it.
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
from apps.jobs.models import JobRun
from tests.factories import TenantFactory
from tests.jobs.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the worker subprocess needs a database it can share with the test (PostgreSQL)",
)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_a_sigkilled_workers_run_is_reaped_and_completed(broker, qcluster, monkeypatch, tmp_path):
    if broker == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("needs Redis (set REDIS_URL)")
    else:
        monkeypatch.setattr(Conf, "ORM", "default")  # this process enqueues on the same broker as the child
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    tenant = TenantFactory(slug="kill-test")
    run = services.job_submit(job_type="test.steps", params={"steps": 15, "step_s": 0.2}, tenant=tenant)
    cluster = qcluster(broker)

    def log() -> str:
        return (tmp_path / f"qcluster-{broker}.log").read_text()[-3000:]

    running = wait_for(lambda: JobRun.objects.filter(pk=run.pk, status="running", progress__gt=0).first(), 60,
                       f"the run to start; qcluster log:\n{log()}")
    worker_pid = int(running.worker.rsplit(":", 1)[1])
    assert worker_pid not in (os.getpid(), cluster.pid)
    os.kill(worker_pid, signal.SIGKILL)

    # The worker is dead: nobody renews the lease (2 s), so the sweep finds the orphan.
    with override_settings(BULWARK={"JOBS": {"RETRY_BASE_DELAY_S": 0.1, "RETRY_MAX_DELAY_S": 0.1}}):
        wait_for(lambda: services.runs_sweep()["orphaned"], 15, "the expired lease to be reaped")
        run.refresh_from_db()
        assert run.status == "retrying" and run.attempts == 1
        assert f"Worker {running.worker} stopped heartbeating" in run.error
        time.sleep(0.2)
        assert services.runs_sweep()["retried"] == 1
    assert cluster.poll() is None, log()
    finished = wait_for(lambda: JobRun.objects.filter(pk=run.pk, status__in=JobRun.FINISHED).first(), 60,
                        f"the retried run to finish; qcluster log:\n{log()}")
    assert finished.status == "succeeded", log()
    assert finished.attempts == 2 and finished.result == {"steps": 15}
    assert int(finished.worker.rsplit(":", 1)[1]) != worker_pid  # a fresh worker took it
