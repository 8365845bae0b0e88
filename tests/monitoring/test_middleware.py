"""The request door: route-pattern keys, bounded cardinality, timing headers, database figures, and
responses refused before the view (rate limited, bad token) measured too."""
from __future__ import annotations

import random
import string

import pytest

from apps.monitoring.models import OTHER_ROUTE, UNMATCHED_ROUTE

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def routes(sink) -> dict:
    return {(key[0], key[1], key[2]): agg for key, agg in sink.take().items()}


def test_keys_are_route_patterns_with_tenant_and_method_never_raw_paths(sink, tenant_a, tenant_b, token_client):
    from tests.factories import ApiTokenFactory

    client = token_client(tenant_a, "admin")
    mine = ApiTokenFactory(tenant=tenant_a)
    assert client.get(f"/api/v1/tokens/{mine.pk}/").status_code == 200
    assert client.get("/api/v1/tokens/987654/").status_code == 404
    assert client.get(ME).status_code == 200
    recorded = routes(sink)
    token_route = "api/v1/tokens/(?P<pk>[^/.]+)/$"
    assert recorded[(tenant_a.pk, token_route, "GET")].count == 2
    assert recorded[(tenant_a.pk, token_route, "GET")].classes[4] == 1
    assert recorded[(tenant_a.pk, "api/v1/me/", "GET")].count == 1
    assert not any(str(mine.pk) in key[1] or "987654" in key[1] for key in recorded)


def test_a_scan_of_random_urls_and_verbs_folds_into_few_keys(sink, client):
    rng = random.Random(7)
    for _ in range(300):
        path = "/" + "/".join("".join(rng.choices(string.ascii_lowercase + string.digits, k=8)) for _ in range(3))
        client.generic(rng.choice(["GET", "POST", "FOO", "PROPFIND"]), path)
    recorded = routes(sink)
    assert {key[1] for key in recorded} == {UNMATCHED_ROUTE}
    assert {key[2] for key in recorded} <= {"GET", "POST", "OTHER"}
    assert sum(agg.count for agg in recorded.values()) == 300


def test_distinct_routes_per_tenant_are_capped_per_minute(store, clock):
    from apps.monitoring.recorder import RequestSink

    capped = RequestSink(store, max_routes=5)
    for i in range(50):
        capped.record(None, f"route-{i}", "GET", 200, 1.0, now=clock.time())
    recorded = capped.take()
    assert len(recorded) == 6
    assert recorded[(None, OTHER_ROUTE, "GET", int(clock.time() // 60))].count == 45


def test_timing_headers_and_database_figures(sink, tenant_a, token_client):
    response = token_client(tenant_a, "viewer").get(ME)
    assert response["X-Response-Time"].endswith("ms")
    parts = dict(part.strip().split(";dur=") for part in response["Server-Timing"].split(","))
    assert set(parts) == {"db", "app", "total"}
    assert float(parts["total"]) >= float(parts["db"]) > 0
    assert float(response["X-Response-Time"][:-2]) == pytest.approx(float(parts["total"]), abs=0.002)
    agg = routes(sink)[(tenant_a.pk, "api/v1/me/", "GET")]
    assert agg.queries_sum >= 1 and agg.db_ms_sum > 0
    assert agg.bytes_sum == len(response.content)


def test_server_timing_can_be_turned_off(sink, settings, client):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"SERVER_TIMING": False}}
    response = client.get("/healthz")
    assert "Server-Timing" not in response and "X-Response-Time" in response


def test_a_refused_token_is_measured_under_its_route_before_any_view_runs(sink, client):
    response = client.get(ME, HTTP_AUTHORIZATION="Bearer bwk_nope_nope")
    assert response.status_code == 401
    assert routes(sink)[(None, "api/v1/me/", "GET")].classes[4] == 1


@pytest.fixture
def fresh_ratelimit():
    from apps.ratelimit import stats
    from apps.ratelimit.backends import backend_loader

    backend_loader.reset()
    yield
    backend_loader.reset()
    stats.stats_counters.take()  # no pending stats left for the flusher after the test database is gone


def test_rate_limited_responses_are_measured(sink, tenant_a, token_client, fresh_ratelimit):
    from tests.ratelimit.factories import RateLimitPolicyFactory

    RateLimitPolicyFactory(tenant=tenant_a, match_kind="any", name="default", rate=2)
    client = token_client(tenant_a, "viewer")
    statuses = [client.get(ME).status_code for _ in range(4)]
    assert statuses.count(429) == 2
    agg = routes(sink)[(tenant_a.pk, "api/v1/me/", "GET")]
    assert (agg.classes[2], agg.classes[4]) == (2, 2)


@pytest.fixture
def fresh_cache(monkeypatch):
    from apps.caching import stats
    from apps.caching.backends import backend_loader
    from apps.caching.responses import new_store_guard, response_cache
    from tests.caching import views

    backend_loader.reset()
    monkeypatch.setattr(response_cache, "guard", new_store_guard())
    views.calls.clear()
    yield views.calls
    stats.sink.take()  # no pending cache counts left for the flusher after the test database is gone
    backend_loader.reset()


@pytest.mark.urls("tests.caching.urls")
def test_cache_hits_are_measured_under_their_route(sink, tenant_a, token_client, fresh_cache):
    """The cache middleware answers a hit before the view runs (and before URL resolution): still measured,
    under the route pattern, with the hit's own (short) duration."""
    from tests.caching.factories import CachePolicyFactory

    CachePolicyFactory(tenant=tenant_a, path_pattern=r"^/items/", ttl_s=60)
    client = token_client(tenant_a, "viewer")
    first, second = client.get("/items/7/"), client.get("/items/7/")
    assert second["Cache-Status"].startswith("Bulwark; hit") and fresh_cache["item"] == 1
    assert "X-Response-Time" in second and "Server-Timing" in second
    recorded = routes(sink)
    agg = recorded[(tenant_a.pk, "items/<int:pk>/", "GET")]
    assert (agg.count, agg.classes[2]) == (2, 2)
    assert agg.bytes_sum == len(first.content) + len(second.content)
    assert not any(key[1] == UNMATCHED_ROUTE for key in recorded)


def test_async_stack_no_thread_switch_and_the_views_queries_counted(sink, rf, tenant_a):
    """Under ASGI with an async stack below it the middleware runs as a coroutine (no sync_to_async hop of its
    own), and the queries its sync view runs in a worker thread are still the request's."""
    from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
    from django.db import connection
    from django.http import HttpResponse

    from apps.monitoring.middleware import MonitoringMiddleware

    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.execute("SELECT 2")

    async def view(request):
        await sync_to_async(query)()
        request.tenant = tenant_a
        return HttpResponse(b"ok")

    middleware = MonitoringMiddleware(view)
    assert iscoroutinefunction(middleware)
    response = async_to_sync(middleware)(rf.get("/healthz"))
    assert response["X-Response-Time"].endswith("ms")
    [(key, agg)] = sink.take().items()
    assert key[0] == tenant_a.pk and agg.queries_sum == 2 and agg.db_ms_sum > 0


def test_server_timing_without_queries_on_a_fake_clock(sink, rf):
    from django.http import HttpResponse

    from apps.core.clock import FakeClock
    from apps.monitoring.middleware import MonitoringMiddleware

    clock = FakeClock()

    def view(request):
        clock.advance(0.0125)
        return HttpResponse(b"ok")

    middleware = MonitoringMiddleware(view)
    middleware.clock = clock
    response = middleware(rf.get("/healthz"))
    assert response["X-Response-Time"] == "12.500ms"
    assert response["Server-Timing"] == "db;dur=0.000, app;dur=12.500, total;dur=12.500"
