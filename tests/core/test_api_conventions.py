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
