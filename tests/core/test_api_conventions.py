"""Conventions every endpoint inherits from the REST_FRAMEWORK settings."""
from __future__ import annotations

import pytest

from apps.core.api.filters import MAX_SEARCH_TERMS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/v1/members/", "/api/v1/tokens/", "/api/v1/audit/events/"])
def test_search_with_too_many_terms_is_a_field_level_400(url, tenant_a, token_client):
    client = token_client(tenant_a, "viewer")
    assert client.get(url, {"search": " ".join(["x"] * MAX_SEARCH_TERMS)}).status_code == 200
    response = client.get(url, {"search": " ".join(f"t{i}" for i in range(5000))})
    assert response.status_code == 400
    assert "search" in response.json()["errors"]


def test_a_json_body_above_the_upload_limit_is_a_413_before_parsing(tenant_a, token_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = token_client(tenant_a, "admin")
    body = '{"name": "ci", "padding": "' + "x" * 2000 + '"}'
    response = client.post("/api/v1/tokens/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert client.post("/api/v1/tokens/", {"name": "ci"}, format="json").status_code == 201


def test_unknown_api_url_answers_in_the_error_shape(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404, "code": "not_found", "message": "No endpoint at /api/v1/no-such-thing/.", "errors": {}
    }
    assert response["Content-Type"] == "application/json"
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_an_unhandled_api_error_answers_in_the_error_shape_with_the_request_id(tenant_a, token_client, monkeypatch):
    from apps.tenancy.api import views

    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.MeView, "get", explode)
    client = token_client(tenant_a, "viewer")
    client.raise_request_exception = False
    response = client.get("/api/v1/me", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "server_error" and "req-42" in body["message"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("url", "role", "body"), [
    ("/api/v1/ratelimit/check", "viewer", lambda nested: nested),
    ("/api/v1/caching/policies/", "admin",
     lambda nested: '{"name": "deep", "path_pattern": "^/x", "tags": ' + nested + "}"),
    ("/api/v1/jobs/", "operator", lambda nested: '{"type": "jobs.ping", "params": {"deep": ' + nested + "}}"),
])
def test_deeply_nested_json_is_a_400_in_the_error_shape_before_any_serializer(url, role, body, tenant_a, token_client):
    client = token_client(tenant_a, role)
    response = client.post(url, body(_nested(1000)), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "nested_too_deep"
    assert response.json()["status"] == 400
    at_limit = client.post(url, body(_nested(29)), content_type="application/json")
    assert at_limit.status_code < 500
    assert at_limit.json().get("code") != "nested_too_deep"


def test_json_depth_ignores_brackets_inside_strings_and_follows_the_setting(settings):
    from apps.core.api.parsers import json_depth

    assert json_depth(b'{"a": "[[[[[[", "b": [1, {"c": "\\"]]]{{{"}]}') == 3
    assert json_depth(b"[]") == 1 and json_depth(b"42") == 0
    assert json_depth(_nested(32).encode()) == 32


def test_nesting_limit_is_a_setting(tenant_a, token_client, settings):
    client = token_client(tenant_a, "viewer")
    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK["CORE"], "MAX_JSON_DEPTH": 2}}
    response = client.post("/api/v1/ratelimit/check", '{"descriptors": [{"policy": "x", "key": ["k"]}]}',
                           content_type="application/json")
    assert response.json()["code"] == "nested_too_deep"


@pytest.mark.parametrize("debug", [False, True])
def test_more_query_parameters_than_django_accepts_answer_in_the_error_shape(debug, tenant_a, token_client, settings):
    settings.DEBUG = debug
    client = token_client(tenant_a, "viewer")
    client.raise_request_exception = False
    query = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.get(f"/api/v1/members/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "too_many_fields"
    at_limit = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS))
    assert client.get(f"/api/v1/members/?{at_limit}").status_code == 200
