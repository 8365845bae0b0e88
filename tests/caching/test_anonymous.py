"""Anonymous traffic: cached by the policies of BULWARK["CACHING"]["ANONYMOUS_TENANT"], never mixed with signed-in copies."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from apps.caching import keys, services
from apps.caching.conf import caching_settings
from tests.caching import views
from tests.caching.factories import CachePolicyFactory
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]


@pytest.fixture
def anonymous_tenant(settings, tenant_a):
    settings.BULWARK = {**settings.BULWARK,
                        "CORE": {**settings.BULWARK.get("CORE", {}), "ANONYMOUS_TENANT": tenant_a.slug},
                        "CACHING": {**settings.BULWARK.get("CACHING", {}), "WARM_BASE_URL": "http://testserver"}}
    return tenant_a


def policy(tenant, **fields):
    fields.setdefault("path_pattern", r"^/who/")
    return CachePolicyFactory(tenant=tenant, **fields)


def test_anonymous_requests_share_one_copy_under_the_anonymous_tenants_policy(anonymous_tenant):
    policy(anonymous_tenant, vary_on="tenant")
    first = Client().get("/who/")
    second = Client().get("/who/")
    assert first["Cache-Status"] == "Bulwark; fwd=miss; stored; ttl=60"
    assert second["Cache-Status"].startswith("Bulwark; hit")
    assert second.json() == {"actor": "anonymous:", "call": 1}
    assert views.calls["who"] == 1


@pytest.mark.parametrize("vary_on", ["tenant", "role", "user"])
def test_an_anonymous_copy_is_never_served_to_a_signed_in_member(anonymous_tenant, token_client, member_client,
                                                                  vary_on):
    policy(anonymous_tenant, vary_on=vary_on)
    Client().get("/who/")
    for client in (token_client(anonymous_tenant, "viewer"), member_client(anonymous_tenant, "viewer")):
        body = client.get("/who/").json()
        assert body["actor"] != "anonymous:"
    # The anonymous call, then the members' own copy (one for both unless per user).
    assert views.calls["who"] == (3 if vary_on == "user" else 2)


@pytest.mark.parametrize("vary_on", ["tenant", "role", "user"])
def test_a_signed_in_copy_is_never_served_to_an_anonymous_request(anonymous_tenant, token_client, vary_on):
    policy(anonymous_tenant, vary_on=vary_on)
    signed_in = token_client(anonymous_tenant, "viewer").get("/who/").json()
    assert signed_in["actor"].startswith("token:")
    anonymous = Client().get("/who/")
    assert anonymous.json()["actor"] == "anonymous:"
    assert anonymous["Cache-Status"].startswith("Bulwark; fwd=miss")


def test_vary_on_anonymous_caches_anonymous_requests_and_bypasses_signed_in_ones(anonymous_tenant, token_client):
    policy(anonymous_tenant, vary_on="anonymous")
    Client().get("/who/")
    assert Client().get("/who/")["Cache-Status"].startswith("Bulwark; hit")
    member = token_client(anonymous_tenant, "viewer")
    answers = [member.get("/who/") for _ in range(2)]
    assert all("Cache-Status" not in a and a.json()["actor"].startswith("token:") for a in answers)
    assert views.calls["who"] == 3


def test_a_signed_in_request_falls_through_an_anonymous_policy_to_the_next_match(anonymous_tenant, token_client):
    policy(anonymous_tenant, name="a-anonymous", vary_on="anonymous")
    policy(anonymous_tenant, name="b-members", vary_on="tenant")
    Client().get("/who/")
    member = token_client(anonymous_tenant, "viewer")
    assert member.get("/who/").json()["actor"].startswith("token:")
    assert member.get("/who/")["Cache-Status"].startswith("Bulwark; hit")
    assert Client().get("/who/").json()["actor"] == "anonymous:"
    assert views.calls["who"] == 2


def test_requests_with_an_authorization_header_or_a_tenantless_user_are_not_anonymous(anonymous_tenant, client):
    policy(anonymous_tenant, vary_on="anonymous")
    Client().get("/who/")
    basic = Client().get("/who/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert "Cache-Status" not in basic
    client.force_login(UserFactory())  # signed in, member of no tenant
    signed_in = client.get("/who/")
    assert "Cache-Status" not in signed_in and signed_in.json()["actor"].startswith("user:")
    assert views.calls["who"] == 3


def test_without_an_anonymous_tenant_anonymous_requests_are_not_cached(tenant_a):
    policy(tenant_a, vary_on="anonymous")
    Client().get("/who/")
    assert "Cache-Status" not in Client().get("/who/")
    assert views.calls["who"] == 2


def test_other_tenants_policies_never_cache_anonymous_requests(anonymous_tenant, tenant_b):
    policy(tenant_b, vary_on="anonymous")
    Client().get("/who/")
    assert "Cache-Status" not in Client().get("/who/")


def test_the_decorator_caches_anonymous_requests_and_bypasses_members(anonymous_tenant, token_client):
    policy(anonymous_tenant, name="who", vary_on="anonymous", path_pattern="^/never/")
    Client().get("/decorated-who/")
    assert Client().get("/decorated-who/")["Cache-Status"].startswith("Bulwark; hit")
    member = token_client(anonymous_tenant, "viewer")
    assert member.get("/decorated-who/").json()["actor"].startswith("token:")
    assert views.calls["who"] == 2


def test_warming_an_anonymous_policy_fills_the_anonymous_copy(anonymous_tenant, token_client):
    warmed = policy(anonymous_tenant, vary_on="anonymous", warm_urls=["/who/"])
    assert services.warm_policy(policy=warmed)["warmed"] == 1
    hit = Client().get("/who/", HTTP_ACCEPT="application/json")
    assert hit["Cache-Status"].startswith("Bulwark; hit")
    assert hit.json()["actor"] == "anonymous:"


def test_the_anonymous_principal_part_differs_from_every_signed_in_one():
    anonymous = keys.principal_part("tenant", role=None, actor_kind="anonymous", actor_id="", anonymous=True)
    signed_in = {keys.principal_part(v, role="viewer", actor_kind="user", actor_id="1") for v in ("tenant", "role", "user")}
    assert anonymous not in signed_in


def test_an_empty_anonymous_tenant_is_refused(settings):
    settings.BULWARK = {**settings.BULWARK, "CACHING": {"ANONYMOUS_TENANT": ""}}
    with pytest.raises(ImproperlyConfigured, match="ANONYMOUS_TENANT"):
        _ = caching_settings.ANONYMOUS_TENANT


def test_the_earlier_setting_names_are_still_read_and_warn(settings):
    from apps.caching.responses import new_store_guard
    from apps.core.requests import anonymous_tenant

    settings.BULWARK = {"CORE": {"STORE_RETRY_INTERVAL_S": 1.0},
                        "CACHING": {"STORE_RETRY_S": 4.0, "ANONYMOUS_TENANT": "old"}}
    with pytest.warns(DeprecationWarning, match=r"BULWARK\['CACHING'\]\['STORE_RETRY_S'\]"):
        caching_settings.validate()
    assert new_store_guard().retry_interval_s() == 4.0
    assert anonymous_tenant(caching_settings) == "old"
