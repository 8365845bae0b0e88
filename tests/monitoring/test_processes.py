"""Two real server processes on one Redis: their request metrics merge, readable within flush + 2 s, and
`/metrics` answers the same figures from either process."""
from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.monitoring import selectors
from apps.tenancy.services import token_create
from benchmarks.ratelimit_harness import port
from tests.servers import project_servers

PORTS = (port(31), port(32))
TOKEN = "two-processes-metrics-token"
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(redis_url, transactional_db):
    with project_servers(list(PORTS), redis_url, BULWARK_METRICS_TOKEN=TOKEN) as bases:
        yield bases


def summaries(tenant):
    return {(i["route"], i["method"]): i for i in selectors.endpoint_summaries(tenant=tenant, window_s=900)}


def test_metrics_of_two_processes_merge(servers, tenant_a):
    _, plaintext = token_create(tenant=tenant_a, name="two-processes", role="viewer")
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {plaintext}"}) as client:
        for i in range(30):
            assert client.get(f"{servers[i % 2]}/api/v1/me").status_code == 200
        for i in range(7):
            assert client.get(f"{servers[i % 2]}/api/v1/tokens/999999/").status_code == 404
        finished = time.monotonic()
    # A finished request is readable within the flush interval (5 s) plus 2 s.
    deadline = finished + 5 + 2
    while True:
        figures = summaries(tenant_a)
        me, missing = figures.get(("api/v1/me/", "GET")), figures.get(("api/v1/tokens/(?P<pk>[^/.]+)/$", "GET"))
        if (me and me["count"] == 30 and missing and missing["count"] == 7) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert me["count"] == 30 and me["error_rate"] == 0 and me["queries_per_request"] > 0
    assert missing["count"] == 7
    assert me["p50_ms"] > 0 and me["p99_ms"] >= me["p50_ms"]

    def requests_total(base):
        text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
        family = next(f for f in text_string_to_metric_families(text) if f.name == "bulwark_http_requests")
        return {(s.labels["route"], s.labels["status_class"]): s.value for s in family.samples
                if s.labels["tenant"] == tenant_a.slug}

    first, second = requests_total(servers[0]), requests_total(servers[1])
    assert first == second
    assert first[("api/v1/me/", "2xx")] == 30 and first[("api/v1/tokens/(?P<pk>[^/.]+)/$", "4xx")] == 7
