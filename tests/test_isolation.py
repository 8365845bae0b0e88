"""Tenant isolation, walked automatically over every API route and admin page of a tenant-owned model.

A route or admin added later is covered without anyone remembering: it only needs a factory for its model
(the test fails until there is one). As tenant A, tenant B's objects are invisible in lists and answer 404
on every detail method and action, and stay unchanged.
"""
from __future__ import annotations

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from tests.isolation import factories_by_model, tenant_admin_models, tenant_api_routes

API_ROUTES = tenant_api_routes()
ADMIN_MODELS = tenant_admin_models()


def _snapshot(obj):
    return model_to_dict(obj.__class__._base_manager.get(pk=obj.pk))


def _every_field(obj):
    """Non-editable fields too (revoked_at, status...), which is what operational actions change; None if gone."""
    row = obj.__class__._base_manager.filter(pk=obj.pk).first()
    return None if row is None else {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def _object_of(model, tenant):
    factories = factories_by_model()
    assert model in factories, f"No factory for {model._meta.label}: add one to tests/<app>/factories.py"
    return factories[model](tenant=tenant)


def test_discovery_finds_the_foundation_routes_and_admins():
    names = {route.name for route in API_ROUTES}
    assert {"v1:member-list", "v1:member-detail", "v1:token-list", "v1:token-detail", "v1:token-revoke"} <= names
    assert {m._meta.model_name for m in ADMIN_MODELS} >= {"membership", "apitoken"}


@pytest.mark.django_db
@pytest.mark.parametrize("principal", ["session", "token"])
@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.detail], ids=lambda r: r.name)
def test_other_tenants_object_answers_404_on_every_detail_method(route, principal, tenant_a, tenant_b,
                                                                member_client, token_client):
    other = _object_of(route.model, tenant_b)
    before = _snapshot(other)
    client = (member_client if principal == "session" else token_client)(tenant_a, "admin")
    url = reverse(route.name, kwargs={route.lookup_kwarg: other.pk})
    for method, action in route.actions:
        response = getattr(client, method)(url, data={}, format="json")
        assert response.status_code == 404, f"{method.upper()} {url} ({action}) answered {response.status_code}"
        assert response.json()["status"] == 404
    assert _snapshot(other) == before


@pytest.mark.django_db
@pytest.mark.parametrize("principal", ["session", "token"])
@pytest.mark.parametrize("route", [r for r in API_ROUTES if not r.detail and ("get", "list") in r.actions],
                         ids=lambda r: r.name)
def test_lists_never_show_another_tenants_objects(route, principal, tenant_a, tenant_b, member_client,
                                                  token_client):
    mine = _object_of(route.model, tenant_a)
    other = _object_of(route.model, tenant_b)
    client = (member_client if principal == "session" else token_client)(tenant_a, "admin")
    response = client.get(reverse(route.name), {"page_size": 500})
    assert response.status_code == 200
    body = response.json()
    ids = {row.get("id") for row in (body["results"] if isinstance(body, dict) else body)}
    assert mine.pk in ids
    assert other.pk not in ids


@pytest.mark.django_db
@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m._meta.label)
def test_admin_pages_hide_and_refuse_another_tenants_objects(model, tenant_a, tenant_b, make_member, client):
    mine = _object_of(model, tenant_a)
    other = _object_of(model, tenant_b)
    before = _snapshot(other)
    client.force_login(make_member(tenant_a, "admin"))
    info = (model._meta.app_label, model._meta.model_name)
    changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == 200
    other_url = reverse("admin:{}_{}_change".format(*info), args=[other.pk])
    assert other_url not in changelist.content.decode()
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:%s_%s_{view}" % info, args=[other.pk])
        # A view refused for one's own objects too (403) says nothing about the other tenant's.
        own_status = client.get(reverse(f"admin:%s_%s_{view}" % info, args=[mine.pk])).status_code
        expected = 403 if own_status == 403 else 404
        assert client.get(url).status_code == expected, url
        assert client.post(url, {"post": "yes"}).status_code == expected, url
    assert _snapshot(other) == before


@pytest.mark.django_db
@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m._meta.label)
def test_admin_actions_never_touch_another_tenants_objects(model, tenant_a, tenant_b, make_member, client, rf):
    """Every changelist action (revoke, retry, reset, delete...) posted with tenant B's id leaves it as it was."""
    from django.contrib import admin as django_admin

    other = _object_of(model, tenant_b)
    before = _every_field(other)
    user = make_member(tenant_a, "admin")
    client.force_login(user)
    request = rf.get("/")
    request.user, request.tenant, request.role = user, tenant_a, "admin"
    actions = django_admin.site._registry[model].get_actions(request)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for name in actions:
        response = client.post(url, {"action": name, "_selected_action": [other.pk], "post": "yes", "index": 0})
        assert response.status_code < 500, f"action {name} answered {response.status_code}"
        assert _every_field(other) == before, f"action {name} changed tenant B's {model._meta.label}"
