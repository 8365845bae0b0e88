"""The API: endpoints and series, ingest (validation, 413, idempotency), thresholds, health, /metrics."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.core import histogram

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"


def record(sink, tenant, route, durations, status=200, method="GET"):
    now = time.time()
    for duration in durations:
        sink.record(tenant.pk if tenant else None, route, method, status, duration, now=now)
    sink.flush(now)


def test_endpoints_list_sorts_and_carries_the_pinned_fields(sink, tenant_a, token_client):
    record(sink, tenant_a, "api/v1/slow", [900.0] * 10)
    record(sink, tenant_a, "api/v1/fast", [2.0] * 30)
    record(sink, tenant_a, "api/v1/fast", [2.0] * 3, status=503)
    client = token_client(tenant_a, "viewer")
    body = client.get(f"{BASE}/endpoints", {"window": "15m", "sort": "-p95_ms"}).json()
    routes = [item["route"] for item in body["results"] if item["count"]]
    assert routes[:2] == ["api/v1/slow", "api/v1/fast"]
    fast = next(i for i in body["results"] if i["route"] == "api/v1/fast")
    assert fast["error_rate"] == pytest.approx(3 / 33)
    assert {"route", "method", "count", "rps", "p50_ms", "p95_ms", "p99_ms", "error_rate", "db_time_share",
            "queries_per_request"} <= set(fast)
    by_rps = client.get(f"{BASE}/endpoints", {"window": "1h", "sort": "-rps"}).json()["results"]
    assert by_rps[0]["route"] == "api/v1/fast"


@pytest.mark.parametrize("query", [{"window": "3d"}, {"sort": "bogus"}, {"window": "1h", "extra": "1"}])
def test_bad_queries_are_400_on_the_field(sink, tenant_a, token_client, query):
    response = token_client(tenant_a, "viewer").get(f"{BASE}/endpoints", query)
    assert response.status_code == 400
    assert set(response.json()["errors"]) & set(query)


def test_series_of_an_endpoint(sink, tenant_a, token_client, store):
    from apps.monitoring.services import rollup_fold

    record(sink, tenant_a, "api/v1/x", [10.0] * 60)
    rollup_fold(tenant=tenant_a, store=store, now=time.time() + 120)  # gives the endpoint its id
    client = token_client(tenant_a, "viewer")
    [item] = [i for i in client.get(f"{BASE}/endpoints").json()["results"] if i["route"] == "api/v1/x"]
    body = client.get(f"{BASE}/endpoints/{item['id']}/series", {"step": "1m"}).json()
    assert set(body["series"]) == {"rps", "p50_ms", "p95_ms", "p99_ms", "error_rate"}
    assert len(body["series"]["rps"]) == 60
    assert sum(v for _, v in body["series"]["rps"]) == pytest.approx(1.0)
    [(at, p50)] = body["series"]["p50_ms"]
    assert abs(p50 - 10.0) <= 0.1
    assert client.get(f"{BASE}/endpoints/{item['id']}/series", {"step": "5m"}).status_code == 400


def batch(**extra):
    return {"batch_id": uuid.uuid4().hex, **extra}


def test_ingest_records_and_histograms_land_in_the_same_figures(sink, tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = [{"route": "svc/orders", "method": "post", "status": 201, "duration_ms": 40.0, "timestamp": now}] * 10
    h: dict[int, int] = {}
    for value in [100.0] * 9 + [1000.0]:
        histogram.add(h, value)
    wire = {"route": "svc/orders", "method": "POST", "timestamp": now, **histogram.to_wire(h),
            "status_counts": {"2xx": 9, "5xx": 1}, "sum_ms": 1900.0}
    response = client.post(f"{BASE}/ingest", batch(records=records, histograms=[wire]), format="json")
    assert response.status_code == 202, response.json()
    assert response.json() == {"batch_id": response.json()["batch_id"], "duplicate": False, "accepted": 20}
    [item] = client.get(f"{BASE}/endpoints").json()["results"]
    assert (item["route"], item["method"], item["count"]) == ("svc/orders", "POST", 20)
    assert item["error_rate"] == pytest.approx(0.05)
    # 10 x 40 ms, 9 x 100 ms, 1 x 1000 ms: rank floor(q * 19) of the merged figures
    assert abs(item["p50_ms"] - 40.0) <= 0.4 and abs(item["p99_ms"] - 100.0) <= 1.0


def test_a_repeated_batch_id_is_a_200_duplicate_and_changes_nothing(sink, tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = batch(records=[{"route": "svc/a", "method": "GET", "status": 200, "duration_ms": 1, "timestamp": now}])
    assert client.post(f"{BASE}/ingest", body, format="json").status_code == 202
    again = client.post(f"{BASE}/ingest", body, format="json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    [item] = client.get(f"{BASE}/endpoints").json()["results"]
    assert item["count"] == 1


def test_more_than_ten_thousand_records_is_a_413_and_nothing_lands(sink, tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record_ = {"route": "r", "method": "GET", "status": 200, "duration_ms": 1, "timestamp": now}
    response = client.post(f"{BASE}/ingest", batch(records=[record_] * 10_001), format="json")
    assert response.status_code == 413 and response.json()["status"] == 413
    assert client.get(f"{BASE}/endpoints").json()["results"] == []


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


NOW = iso(time.time())


def rec(**fields):
    return {"route": "r", "method": "GET", "status": 200, "duration_ms": 1, "timestamp": NOW, **fields}


def hist(**fields):
    return {"route": "r", "method": "GET", "timestamp": NOW, "gamma": histogram.GAMMA, "offset": 0, "counts": [1],
            "status_counts": {"2xx": 1}, "sum_ms": 1, **fields}


@pytest.mark.parametrize("bad, field", [
    ({"records": [rec(status=99)]}, "records"),
    ({"records": [rec(duration_ms=-1)]}, "records"),
    ({"records": [rec(method="BREW")]}, "records"),
    ({"histograms": [hist(gamma=1.05)]}, "histograms"),
    ({"histograms": [hist(counts=[2])]}, "histograms"),
    # Not finite: NaN passes every min/max comparison (a 500 in the histogram, a partial write in Redis).
    ({"records": [rec(duration_ms="NaN")]}, "records"),
    ({"records": [rec(duration_ms="Infinity")]}, "records"),
    ({"histograms": [hist(sum_ms="NaN")]}, "histograms"),
    ({"histograms": [hist(sum_ms="Infinity")]}, "histograms"),
    ({"histograms": [hist(min_ms="NaN")]}, "histograms"),
    ({"histograms": [hist(max_ms="-Infinity")]}, "histograms"),
    ({"histograms": [hist(gamma="NaN")]}, "histograms"),
    # Counts beyond what a bigint column holds once added up.
    ({"histograms": [hist(counts=[10**19], status_counts={"2xx": 10**19})]}, "histograms"),
    ({"histograms": [hist(counts=[1, 10**19 - 1], status_counts={"2xx": 10**19})]}, "histograms"),
    ({}, "records"),
    ({"records": [], "unexpected": 1}, "unexpected"),
])
def test_invalid_batches_are_400_on_the_field_and_nothing_lands(sink, tenant_a, token_client, bad, field):
    client = token_client(tenant_a, "operator")
    response = client.post(f"{BASE}/ingest", batch(**bad), format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert client.get(f"{BASE}/endpoints").json()["results"] == []


def test_a_viewer_may_not_ingest(sink, tenant_a, token_client):
    response = token_client(tenant_a, "viewer").post(f"{BASE}/ingest", batch(records=[]), format="json")
    assert response.status_code == 403


def test_thresholds_defaults_edit_by_admin_audited_and_states(sink, tenant_a, token_client):
    from apps.audit.models import AuditEvent

    viewer, admin = token_client(tenant_a, "viewer"), token_client(tenant_a, "admin")
    body = viewer.get(f"{BASE}/thresholds").json()
    assert (body["cpu_warning_pct"], body["cpu_critical_pct"], body["memory_warning_pct"],
            body["memory_critical_pct"], body["response_time_warning_ms"], body["response_time_critical_ms"],
            body["error_rate_warning_pct"], body["error_rate_critical_pct"]) == (75, 90, 70, 85, 500, 1000, 2, 5)
    assert viewer.patch(f"{BASE}/thresholds", {"cpu_warning_pct": 50}, format="json").status_code == 403
    bad = admin.patch(f"{BASE}/thresholds", {"response_time_warning_ms": 2000}, format="json")
    assert bad.status_code == 400 and "response_time_critical_ms" in bad.json()["errors"]
    assert admin.patch(f"{BASE}/thresholds", {"response_time_warning_ms": 5, "response_time_critical_ms": 50},
                       format="json").status_code == 200
    assert AuditEvent.objects.filter(tenant=tenant_a, object_type__contains="thresholds").count() == 1
    sink.take()  # the API calls above are measured too: leave them out of the figures judged
    record(sink, tenant_a, "api/v1/a", [20.0] * 10)
    states = viewer.get(f"{BASE}/thresholds").json()["states"]
    assert states["response_time"]["state"] == "warning"
    assert abs(states["response_time"]["value"] - 20.0) <= 0.2
    sink.take()
    record(sink, tenant_a, "api/v1/a", [200.0] * 90, status=500)
    states = viewer.get(f"{BASE}/thresholds").json()["states"]
    assert states["response_time"]["state"] == "critical"
    assert states["error_rate"] == {**states["error_rate"], "state": "critical", "value": pytest.approx(90.0)}


def test_health_lists_every_check_and_the_worst_state_wins(sink, tenant_a, token_client):
    from apps.core import health as core_health
    from apps.monitoring.services import sample_record

    sample_record(host="web-1", figures={"cpu_percent": 80.0, "memory_percent": 10.0, "disk_percent": 10.0})
    client = token_client(tenant_a, "viewer")
    body = client.get(f"{BASE}/health").json()
    assert {"database", "redis", "workers", "schedules", "disk", "threshold:cpu", "threshold:memory",
            "threshold:response_time", "threshold:error_rate"} <= set(body["checks"])
    assert body["checks"]["threshold:cpu"] == {**body["checks"]["threshold:cpu"], "state": "warning", "value": 80.0}
    assert body["checks"]["database"]["state"] == "ok"
    assert body["checks"]["workers"]["state"] == "critical"  # no qcluster runs in the tests
    assert body["state"] == "critical"
    core_health.mark_degraded("caching", "store unreachable")
    body = client.get(f"{BASE}/health").json()
    assert body["checks"]["degraded:caching"]["state"] == "warning"


def test_metrics_needs_the_token_and_parses_as_prometheus(sink, tenant_a, client, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"METRICS_TOKEN": "s3cret-token"}}
    record(sink, tenant_a, "api/v1/me", [3.0, 30.0, 300.0])
    record(sink, tenant_a, "api/v1/me", [4.0], status=404)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    counts = {(s.labels["tenant"], s.labels["route"], s.labels["status_class"]): s.value
              for s in families["bulwark_http_requests"].samples
              if s.name == "bulwark_http_requests_total" and s.labels["tenant"] == "tenant-a"}
    assert counts == {("tenant-a", "api/v1/me", "2xx"): 3.0, ("tenant-a", "api/v1/me", "4xx"): 1.0}
    buckets = {s.labels["le"]: s.value for s in families["bulwark_http_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["tenant"] == "tenant-a"}
    assert (buckets["0.005"], buckets["0.05"], buckets["0.5"], buckets["+Inf"]) == (2.0, 3.0, 4.0, 4.0)
    assert "bulwark_jobs_queued" in families and "bulwark_system_cpu_percent" in families


def test_metrics_by_allowed_address_only(sink, client, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"METRICS_ALLOW_IPS": ["10.0.0.0/8"]}}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401  # loopback is not implied
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_pushed_routes_per_tenant_are_bounded(sink, tenant_a, token_client, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"MAX_ROUTES_PER_TENANT": 3}}
    client = token_client(tenant_a, "operator")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for n in range(2):
        records = [{"route": f"svc/{n}-{i}", "method": "GET", "status": 200, "duration_ms": 1, "timestamp": now}
                   for i in range(5)]
        assert client.post(f"{BASE}/ingest", batch(records=records), format="json").status_code == 202
    routes = {i["route"]: i["count"] for i in client.get(f"{BASE}/endpoints").json()["results"]}
    assert len(routes) == 4 and routes["<other>"] == 7


def test_reads_and_metrics_answer_with_the_store_down(tenant_a, token_client, client, settings, monkeypatch):
    import redis

    from apps.core import health
    from apps.monitoring import recorder
    from apps.monitoring.backends.redis import RedisMetricsStore
    from benchmarks.ratelimit_harness import port

    nobody = redis.Redis(host="127.0.0.1", port=port(39), socket_connect_timeout=0.2)  # nothing listens there
    monkeypatch.setattr(recorder, "sink", recorder.RequestSink(RedisMetricsStore(client=nobody)))
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"METRICS_TOKEN": "t0ken"}}
    assert token_client(tenant_a, "viewer").get(f"{BASE}/endpoints").status_code == 200
    assert "monitoring:store" in health.degraded_components()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").status_code == 200


def test_an_ingest_while_the_store_is_down_is_a_503_and_its_resend_lands_once(store, tenant_a, token_client,
                                                                              monkeypatch):
    import redis

    from apps.monitoring import recorder
    from apps.monitoring.backends.redis import RedisMetricsStore
    from benchmarks.ratelimit_harness import port

    nobody = redis.Redis(host="127.0.0.1", port=port(39), socket_connect_timeout=0.2)
    down = RedisMetricsStore(client=nobody)
    monkeypatch.setattr(recorder, "sink", recorder.RequestSink(down))
    client = token_client(tenant_a, "operator")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = batch(records=[{"route": "svc/a", "method": "GET", "status": 200, "duration_ms": 1, "timestamp": now}])
    refused = client.post(f"{BASE}/ingest", body, format="json")
    assert refused.status_code == 503 and refused.json()["code"] == "store_unavailable"
    assert client.post(f"{BASE}/ingest", body, format="json").status_code == 503  # the guard skips the store
    monkeypatch.setattr(recorder, "sink", recorder.RequestSink(store))  # the store is back
    assert client.post(f"{BASE}/ingest", body, format="json").status_code == 202
    assert client.post(f"{BASE}/ingest", body, format="json").json()["duplicate"] is True
    [item] = client.get(f"{BASE}/endpoints").json()["results"]
    assert item["count"] == 1


def test_bad_figures_are_named_on_their_field(sink, tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    response = client.post(f"{BASE}/ingest", batch(records=[rec(), rec(duration_ms="NaN")],
                                                   histograms=[hist(counts=[10**19], status_counts={"2xx": 10**19},
                                                                    sum_ms="Infinity")]), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["records"][1]["duration_ms"] == ["Must be a finite number."]
    assert set(errors["histograms"][0]) == {"counts", "status_counts", "sum_ms"}
    assert errors["histograms"][0]["sum_ms"] == ["Must be a finite number."]


@pytest.mark.parametrize("offset_s", [-49 * 3600, 10 * 60, 400 * 86400])
def test_a_timestamp_outside_minute_retention_or_ahead_is_400_on_the_field(sink, tenant_a, token_client, offset_s):
    client = token_client(tenant_a, "operator")
    moment = iso(time.time() + offset_s)
    response = client.post(f"{BASE}/ingest", batch(records=[rec(timestamp=moment)],
                                                   histograms=[hist(timestamp=moment)]), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "timestamp" in errors["records"][0] and "timestamp" in errors["histograms"][0]
    assert client.get(f"{BASE}/endpoints").json()["results"] == []


def test_timestamps_within_retention_and_a_little_ahead_land(sink, tenant_a, token_client):
    client = token_client(tenant_a, "operator")
    records = [rec(timestamp=iso(time.time() - 47 * 3600)), rec(timestamp=iso(time.time() + 4 * 60))]
    response = client.post(f"{BASE}/ingest", batch(records=records), format="json")
    assert response.status_code == 202, response.json()


def test_a_full_batch_of_ten_thousand_long_records_is_accepted(sink, tenant_a, token_client):
    """10,000 records with routes of the longest accepted length are ~4 MB, beyond the generic body limit."""
    from django.conf import settings

    client = token_client(tenant_a, "operator")
    route = "svc/" + "x" * 251
    moment = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    records = [{"route": route, "method": "OPTIONS", "status": 503, "duration_ms": 86_399_999.123456,
                "timestamp": moment}] * 10_000
    body = batch(records=records)
    assert len(json.dumps(body)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.post(f"{BASE}/ingest", body, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 10_000
    [item] = client.get(f"{BASE}/endpoints").json()["results"]
    assert (item["route"], item["count"], item["error_rate"]) == (route, 10_000, 1.0)


def test_a_body_beyond_ingest_max_bytes_is_a_413_and_nothing_lands(sink, tenant_a, token_client, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"INGEST_MAX_BYTES": 4096}}
    client = token_client(tenant_a, "operator")
    body = batch(records=[rec(route="svc/" + "y" * 200)] * 20)
    assert len(json.dumps(body)) > 4096
    response = client.post(f"{BASE}/ingest", body, format="json")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert "4096" in response.json()["message"]
    assert client.get(f"{BASE}/endpoints").json()["results"] == []
    assert client.post(f"{BASE}/ingest", batch(records=[rec()] * 5), format="json").status_code == 202


def test_other_endpoints_keep_the_generic_body_limit(tenant_a, token_client, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"INGEST_MAX_BYTES": 64 * 1024 * 1024}}
    body = {"cpu_warning_pct": 50, "padding": "z" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    response = token_client(tenant_a, "admin").patch(f"{BASE}/thresholds", body, format="json")
    assert response.status_code == 413
