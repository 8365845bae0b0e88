"""The console pages: endpoints table (sorted, sparklines, own tenant only), an endpoint's percentiles,
thresholds edited through the service (audited), system samples for superusers only."""
from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from apps.monitoring.models import Thresholds
from apps.monitoring.services import endpoint_for, sample_record

pytestmark = pytest.mark.django_db


def test_endpoints_table_sorted_by_p95_with_sparklines(sink, tenant_a, tenant_b, make_member, client):
    now = time.time()
    for route, duration in (("api/v1/slow", 800.0), ("api/v1/fast", 2.0)):
        endpoint_for(tenant_id=tenant_a.pk, route=route, method="GET")
        for _ in range(5):
            sink.record(tenant_a.pk, route, "GET", 200, duration, now=now)
    sink.record(tenant_b.pk, "api/v1/secret-of-b", "GET", 200, 1.0, now=now)
    sink.flush(now)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_monitoring_endpoint_changelist"), {"sort": "p95"}).content.decode()
    assert page.index("api/v1/slow") < page.index("api/v1/fast")
    assert "<svg" in page and "secret-of-b" not in page


def test_an_endpoints_page_shows_its_percentiles(sink, tenant_a, make_member, client):
    now = time.time()
    endpoint = endpoint_for(tenant_id=tenant_a.pk, route="api/v1/x", method="GET")
    for _ in range(10):
        sink.record(tenant_a.pk, "api/v1/x", "GET", 200, 42.0, now=now)
    sink.flush(now)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_monitoring_endpoint_change", args=[endpoint.pk])).content.decode()
    [(p50, p95, p99)] = re.findall(r"<td>0\.17</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([\d.]+)</td>", page)
    assert all(abs(float(v) - 42.0) <= 0.42 + 0.05 for v in (p50, p95, p99))  # 1 %, shown to 0.1 ms


def test_thresholds_edited_in_the_admin_are_validated_and_audited(tenant_a, make_member, client):
    from apps.audit.models import AuditEvent

    client.force_login(make_member(tenant_a, "admin"))
    url = reverse("admin:bulwark_monitoring_thresholds_add")
    fields = {"cpu_warning_pct": 60, "cpu_critical_pct": 80, "memory_warning_pct": 70, "memory_critical_pct": 85,
              "response_time_warning_ms": 500, "response_time_critical_ms": 1000, "error_rate_warning_pct": 2,
              "error_rate_critical_pct": 5}
    bad = client.post(url, {**fields, "cpu_critical_pct": 10})
    assert bad.status_code == 200 and not Thresholds.objects.exists()
    assert client.post(url, fields).status_code == 302
    assert Thresholds.objects.get(tenant=tenant_a).cpu_warning_pct == 60
    assert AuditEvent.objects.filter(tenant=tenant_a, action="create", object_type__contains="thresholds").exists()


def test_system_samples_are_for_superusers_only(tenant_a, make_member, client, django_user_model):
    sample = sample_record(host="db-1", figures={"cpu_percent": 1.0, "memory_percent": 2.0, "disk_percent": 3.0})
    client.force_login(make_member(tenant_a, "admin"))
    assert client.get(reverse("admin:bulwark_monitoring_systemsample_changelist")).status_code == 403
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-123")
    client.force_login(root)
    assert client.get(reverse("admin:bulwark_monitoring_systemsample_changelist")).status_code == 200
    assert client.get(reverse("admin:bulwark_monitoring_systemsample_change", args=[sample.pk])).status_code == 200
