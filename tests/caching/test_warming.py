"""Warming: a policy's URLs are fetched through their views as the tenant's read-only principal and stored."""
from __future__ import annotations

import pytest

from apps.caching import services
from tests.caching import views
from tests.caching.factories import CachePolicyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]


@pytest.fixture(autouse=True)
def _warm_on_testserver(settings):
    settings.BULWARK = {**settings.BULWARK, "CACHING": {"WARM_BASE_URL": "http://testserver"}}


def test_warmed_urls_are_hits_for_the_first_client(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/items/", warm_urls=["/items/1/", "/items/2/?b=2&a=1"])
    progress = []
    result = services.warm_policy(policy=policy, progress=lambda percent, message: progress.append(percent))
    assert result == {"policy": policy.name, "warmed": 2, "failed": []}
    assert progress == [50, 100]
    assert views.calls["item"] == 2
    client = token_client(tenant_a, "viewer")
    first = client.get("/items/1/", HTTP_ACCEPT="application/json")
    assert first["Cache-Status"].startswith("Bulwark; hit")
    assert client.get("/items/2/?a=1&b=2", HTTP_ACCEPT="application/json")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["item"] == 2


def test_warming_reaches_views_that_need_a_tenant_role(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/api/v1/caching/policies/",
                                warm_urls=["/api/v1/caching/policies/"])
    assert services.warm_policy(policy=policy)["warmed"] == 1
    response = token_client(tenant_a, "viewer").get("/api/v1/caching/policies/", HTTP_ACCEPT="application/json")
    assert response["Cache-Status"].startswith("Bulwark; hit")
    assert response.json()["results"][0]["name"] == policy.name


def test_unknown_routes_and_uncacheable_answers_are_reported(tenant_a):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/(items|error)/",
                                warm_urls=["/nowhere/", "/error/", "/items/3/"])
    result = services.warm_policy(policy=policy)
    assert result["warmed"] == 1
    assert result["failed"][0] == {"url": "/nowhere/", "error": "no such route"}
    assert result["failed"][1]["status"] == 404


def test_per_user_policies_are_not_warmed(tenant_a):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="user", warm_urls=["/items/1/"])
    result = services.warm_policy(policy=policy)
    assert result["warmed"] == 0 and "skipped" in result
    assert views.calls == {}


def test_warming_refreshes_an_existing_entry(tenant_a, token_client):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/items/", warm_urls=["/items/1/"])
    client = token_client(tenant_a, "viewer")
    client.get("/items/1/", HTTP_ACCEPT="application/json")
    views.state["version"] = "v2"
    services.warm_policy(policy=policy)
    assert client.get("/items/1/", HTTP_ACCEPT="application/json").json()["version"] == "v2"


def test_a_url_of_a_host_outside_allowed_hosts_is_reported_and_the_rest_warmed(tenant_a, settings):
    policy = CachePolicyFactory(tenant=tenant_a, vary_on="role", path_pattern="^/items/", warm_urls=["/items/1/", "/items/2/"])
    # As if saved while the host was allowed: ALLOWED_HOSTS comes from the environment and may change.
    policy.warm_urls = ["http://gone.example.com/items/1/", "/items/2/"]
    result = services.warm_policy(policy=policy)
    assert result["warmed"] == 1
    assert result["failed"] == [{"url": "http://gone.example.com/items/1/", "error": "host not in ALLOWED_HOSTS"}]


def test_a_warm_url_must_name_an_allowed_host(tenant_a, token_client):
    response = token_client(tenant_a, "admin").post("/api/v1/caching/policies/", {
        "name": "w", "path_pattern": "^/items/", "warm_urls": ["https://evil.example.com/items/1/"],
    }, format="json")
    assert response.status_code == 400 and "warm_urls" in response.json()["errors"]
    allowed = token_client(tenant_a, "admin").post("/api/v1/caching/policies/", {
        "name": "w", "path_pattern": "^/items/", "warm_urls": ["http://testserver/items/1/", "/items/2/"],
    }, format="json")
    assert allowed.status_code == 201, allowed.json()
