"""Fixtures of the jobs tests: the test job types, a controllable random source, a helper to run attempts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.jobs.testapp.jobs  # noqa: F401 - registers the test job types


class MaxRandom:
    """`uniform(a, b)` answers b, so a jittered delay is its ceiling and tests see the exponential bound."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b


@pytest.fixture
def max_random() -> MaxRandom:
    return MaxRandom()


@pytest.fixture
def run_attempt():
    """run_attempt(run) -> the run after one attempt executed in this process, as a worker would."""
    from apps.jobs import runner
    from apps.jobs.models import JobRun

    def attempt(run):
        JobRun.objects.filter(pk=run.pk, status__in=["retrying"]).update(status="queued", next_attempt_at=None)
        runner.execute(run.pk)
        run.refresh_from_db()
        return run

    return attempt


@pytest.fixture
def broker_messages():
    """broker_messages() -> the run pks of the `execute` messages on the real broker since the test began
    (drained as they are read)."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    broker.purge_queue()

    def drain() -> list[int]:
        pks = []
        while broker.queue_size():
            for ack_id, package in broker.dequeue() or []:
                task = SignedPackage.loads(package)
                assert task["func"] == "apps.jobs.runner.execute"
                pks.append(task["args"][0])
                broker.acknowledge(ack_id)
        return pks

    yield drain
    broker.purge_queue()


ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def qcluster(tmp_path):
    """start(broker, workers=1, jobs=None) -> a running `manage.py qcluster` subprocess (its own process group)
    on the test database, with BULWARK["JOBS"] overrides `jobs`; stopped at teardown."""
    from django.db import connection

    started = []

    def start(broker: str, workers: int = 1, jobs: dict | None = None) -> subprocess.Popen:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.jobs.qcluster_settings",
               "BULWARK_TEST_DB_NAME": connection.settings_dict["NAME"], "BULWARK_TEST_BROKER": broker,
               "BULWARK_TEST_WORKERS": str(workers), "BULWARK_TEST_JOBS": json.dumps(jobs or {})}
        log = (tmp_path / f"qcluster-{broker}.log").open("a")
        process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        log.close()
