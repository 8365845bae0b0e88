"""Alerting fixtures: a metric kind the test sets by hand, a clock, and the real local receivers."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.core import metric_kinds
from apps.core.clock import FakeClock
from benchmarks.ratelimit_harness import port
from tests.alerting.receivers import HttpReceiver, SmtpReceiver
from tests.jobs.conftest import run_attempt  # noqa: F401 - one attempt of a job run, as a worker would

TEST_METRIC = "test_errors"


class Readings:
    """The figures `test_errors` answers, per tenant: readings.set(tenant, [({"route": "a"}, 0.1)])."""

    def __init__(self) -> None:
        self.by_tenant: dict[int, list] = {}
        self.reads = 0

    def set(self, tenant, values: list) -> None:
        self.by_tenant[tenant.pk] = values

    def read(self, tenant_id: int, window_s: int, now: datetime) -> list:
        self.reads += 1
        return list(self.by_tenant.get(tenant_id, []))


@pytest.fixture
def readings():
    found = Readings()
    metric_kinds.register(metric_kinds.MetricKind(TEST_METRIC, "fraction", ("route",), "test figure", found.read))
    yield found
    metric_kinds._KINDS.pop(TEST_METRIC, None)


class Clock(FakeClock):
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(time=1_800_000_000.0)


@pytest.fixture
def http_receiver():
    receiver = HttpReceiver(port(41)).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_receiver(settings):
    receiver = SmtpReceiver(port(42)).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = receiver.port
    yield receiver
    receiver.stop()
