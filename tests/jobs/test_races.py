"""Several real processes on one PostgreSQL: one claim wins, one idempotency key makes one run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.jobs import services
from apps.jobs.models import JobRun
from tests.factories import TenantFactory

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = 4
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the contender processes need a database they share with the test (PostgreSQL)",
)]


def race(*args: str) -> list[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.jobs.qcluster_settings",
           "BULWARK_TEST_DB_NAME": connection.settings_dict["NAME"], "BULWARK_TEST_BROKER": "orm"}
    start = str(time.time() + 4)  # every contender has imported Django by then
    processes = [subprocess.Popen([sys.executable, "-m", "tests.jobs.race", start, *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(CONTENDERS)]
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err[-2000:]
            outputs.append(out.strip())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def test_one_of_several_deliveries_claims_the_run():
    run = services.job_submit(job_type="test.noop", params={}, tenant=TenantFactory(slug="race-claim"))
    outputs = race("claim", str(run.pk))
    assert sorted(outputs) == ["claimed"] + ["refused"] * (CONTENDERS - 1)
    run.refresh_from_db()
    assert run.status == "running" and run.attempts == 1


def test_concurrent_submissions_with_one_key_make_one_run():
    tenant = TenantFactory(slug="race-submit")
    outputs = race("submit", str(tenant.pk), "same-key")
    assert len(set(outputs)) == 1
    assert JobRun.objects.filter(tenant=tenant).count() == 1
