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
