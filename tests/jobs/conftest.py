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
