"""Fixtures of the jobs tests: the test job types, a controllable random source, a helper to run attempts."""
from __future__ import annotations

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
