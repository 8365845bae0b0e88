"""The metric kinds alerting registers, read from real monitoring data (the store's live minutes, Redis),
and an error-rate rule driven by recorded requests."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.alerting import services
from apps.alerting.evaluation import evaluate_tenant
from apps.alerting.models import Alert
from apps.core import metric_kinds

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(redis_url, monkeypatch):
    from apps.monitoring import recorder
    from apps.monitoring.backends.redis import RedisMetricsStore

    fresh = recorder.RequestSink(RedisMetricsStore())
    monkeypatch.setattr(recorder, "sink", fresh)
    return fresh


def record(sink, tenant, at: float, statuses: list[int], route="api/v1/orders"):
    for status in statuses:
        sink.record(tenant.pk, route, "POST", status, 20.0, now=at)
    sink.flush(at)


def test_error_rate_is_read_per_route_of_the_tenant_only(sink, tenant_a, tenant_b):
    now = 1_800_000_030.0  # 30 s into a minute
    record(sink, tenant_a, now - 5, [200] * 9 + [500])
    record(sink, tenant_b, now - 5, [500] * 10)
    read = metric_kinds.get("endpoint_error_rate").read
    assert read(tenant_a.pk, 60, datetime.fromtimestamp(now, tz=UTC)) == [
        ({"route": "api/v1/orders", "method": "POST"}, 0.1)]


def test_a_window_read_just_after_a_minute_boundary_still_sees_the_last_minute(sink, tenant_a):
    """Otherwise a pending alert would flap to inactive at every minute boundary and never fire."""
    boundary = 1_800_000_000.0
    record(sink, tenant_a, boundary - 20, [500] * 5)
    read = metric_kinds.get("endpoint_error_rate").read
    assert read(tenant_a.pk, 60, datetime.fromtimestamp(boundary + 2, tz=UTC)) == [
        ({"route": "api/v1/orders", "method": "POST"}, 1.0)]


def test_an_error_rate_rule_fires_from_recorded_requests(sink, tenant_a):
    services.rule_create(tenant=tenant_a, data={"name": "orders", "metric": "endpoint_error_rate",
                                                "matchers": {"route": "api/v1/orders"}, "for_s": 30})
    start = 1_800_000_010.0
    for step in range(4):  # one cycle every 15 s, requests failing 10 % of the time throughout
        at = start + 15 * step
        record(sink, tenant_a, at - 1, [200] * 9 + [500])
        evaluate_tenant(tenant_id=tenant_a.pk, now=datetime.fromtimestamp(at, tz=UTC))
    alerts = {a.severity: a.state for a in Alert.objects.for_tenant(tenant_a)}
    assert alerts == {"warning": "firing", "critical": "firing"}  # 0.1 is above both default levels
