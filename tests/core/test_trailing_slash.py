"""One slash convention on every API route: the canonical form ends with a slash, the other form is served."""
from __future__ import annotations

import re

import pytest
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.urls import get_resolver, resolve

from apps.core.middleware import canonical_api_path

pytestmark = pytest.mark.django_db


def api_routes() -> list[str]:
    """Every route under /api/v1/, as a concrete path (URL arguments filled with a sample value)."""
    routes = set()
    for _, regex, _, _ in extract_views_from_urlpatterns(get_resolver().url_patterns):
        route = simplify_regex(regex)
        if route.startswith("/api/v1/"):
            routes.add(re.sub(r"<[^>]+>", "1", route))
    return sorted(routes)


def test_the_walk_finds_every_app():
    routes = api_routes()
    for prefix in ("/api/v1/me/", "/api/v1/tokens/", "/api/v1/audit/", "/api/v1/jobs/", "/api/v1/ratelimit/check/",
                   "/api/v1/resilience/", "/api/v1/caching/"):
        assert any(route.startswith(prefix) for route in routes), prefix


@pytest.mark.parametrize("route", api_routes())
def test_every_api_route_ends_with_a_slash_and_the_slashless_form_reaches_the_same_view(route):
    assert route.endswith("/")
    slashless = route.rstrip("/")
    assert canonical_api_path(slashless) == route
    assert resolve(canonical_api_path(slashless)).url_name == resolve(route).url_name


@pytest.mark.parametrize("route", api_routes())
def test_every_api_route_answers_the_same_both_ways(route, tenant_a, token_client):
    client = token_client(tenant_a, "admin")
    with_slash, without = client.get(route), client.get(route.rstrip("/"))
    assert with_slash.status_code == without.status_code != 500
    assert with_slash.status_code != 404 or with_slash.json()["message"] != f"No endpoint at {route}."


@pytest.mark.parametrize("url", ["/api/v1/ratelimit/policies/", "/api/v1/ratelimit/policies",
                                 "/api/v1/resilience/policies/", "/api/v1/resilience/policies"])
def test_a_post_is_accepted_with_or_without_the_slash_and_keeps_its_body(url, tenant_a, token_client):
    client = token_client(tenant_a, "admin")
    extra = {"rate": 10} if "ratelimit" in url else {}
    response = client.post(url, {"name": "slash-" + str(len(url)), **extra}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "slash-" + str(len(url))


def test_unknown_paths_stay_404_both_ways(client):
    assert canonical_api_path("/api/v1/nothing-here") is None
    assert client.get("/api/v1/nothing-here").status_code == 404
