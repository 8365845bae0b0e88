"""One principal's response is never served to another (issue 13, item 7), through each door: token, session."""
from __future__ import annotations

import pytest

from apps.caching import services
from apps.caching.models import CachePolicy
from tests.caching import views
from tests.caching.factories import CachePolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["token", "session"])
def two_clients(request, tenant_a, token_client, member_client):
    """alice and bob: two principals of one tenant with the same role, through the door of the test."""
    make = token_client if request.param == "token" else member_client
    return make(tenant_a, "viewer"), make(tenant_a, "viewer")


def _principal(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()["principal"]


@pytest.mark.parametrize("pattern", [r"^/api/v1/me/$", r"^/api/v1/"], ids=["me-only", "cache-all-reads"])
def test_a_policy_that_names_only_a_path_never_serves_alices_me_to_bob(pattern, tenant_a, two_clients):
    services.policy_create(tenant=tenant_a, data={"name": "broad", "path_pattern": pattern})
    alice, bob = two_clients
    alice_me = _principal(alice.get("/api/v1/me/"))
    bob_me = _principal(bob.get("/api/v1/me/"))
    assert bob_me != alice_me
    # Per user, the cache still works: alice's second read is her own copy.
    again = alice.get("/api/v1/me/")
    assert again["Cache-Status"].startswith("Bulwark; hit")
    assert _principal(again) == alice_me


def test_new_policies_vary_on_user_unless_they_choose(tenant_a, member_client):
    response = member_client(tenant_a, "admin").post(
        "/api/v1/caching/policies/", {"name": "reads", "path_pattern": "^/api/v1/"}, format="json")
    assert response.status_code == 201
    assert response.json()["vary_on"] == "user"
    assert CachePolicy().vary_on == "user"


def test_me_is_private_and_not_stored_by_a_policy_that_shares_by_role(tenant_a, two_clients):
    CachePolicyFactory(tenant=tenant_a, name="me", path_pattern=r"^/api/v1/me/$", vary_on="role")
    alice, bob = two_clients
    first = alice.get("/api/v1/me/")
    assert "private" in first["Cache-Control"]
    assert first["Cache-Status"] == "Bulwark; fwd=miss; detail=not-stored-private"
    assert _principal(bob.get("/api/v1/me/")) != _principal(first)


def test_the_schema_and_admin_explain_what_sharing_means(tenant_a, member_client):
    schema = member_client(tenant_a, "viewer").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    help_text = schema["components"]["schemas"]["CachePolicyInputRequest"]["properties"]["vary_on"]["description"]
    assert "role" in help_text and "tenant" in help_text and "someone else's" in help_text
    assert "someone else's" in CachePolicy._meta.get_field("vary_on").help_text


@pytest.mark.urls("tests.caching.urls")
@pytest.mark.parametrize("vary_on", ["user", "tenant"])
def test_a_body_that_echoes_the_askers_credentials_is_never_stored(vary_on, tenant_a, two_clients):
    CachePolicyFactory(tenant=tenant_a, path_pattern=r"^/echo-credentials/", vary_on=vary_on)
    alice, bob = two_clients
    first = alice.get("/echo-credentials/")
    assert first["Cache-Status"] == "Bulwark; fwd=miss; detail=not-stored-credential"
    bob.get("/echo-credentials/")
    alice.get("/echo-credentials/")
    assert views.calls["echo"] == 3
