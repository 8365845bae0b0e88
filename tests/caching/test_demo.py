"""The demo seed creates cache policies on real endpoints, once however often it runs, and they hit."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.caching.demo import DEMO_POLICIES
from apps.caching.models import CachePolicy
from tests.caching.factories import CachePolicyFactory
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_policies_idempotently():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    ttl = dict(CachePolicy.objects.filter(tenant__slug="acme").values_list("name", "ttl_s"))
    assert ttl == {"cache-policies": 60, "rate-limit-policies": 120, "job-types": 300}
    assert CachePolicy.objects.filter(tenant__slug="globex").count() == 3


@pytest.mark.parametrize("fields", DEMO_POLICIES, ids=lambda f: f["name"])
def test_the_demo_user_sees_the_second_read_of_each_seeded_route_hit(fields):
    call_command("seed_demo", stdout=io.StringIO())
    path = reverse(fields["route_name"])  # a route that does not exist raises NoReverseMatch
    client = Client()
    assert client.login(username="acme-viewer", password="acme-viewer-demo")
    first = client.get(path)
    second = client.get(path)
    assert first.status_code == second.status_code == 200
    assert first["Cache-Status"].startswith("Bulwark; fwd=miss; stored")
    assert second["Cache-Status"].startswith("Bulwark; hit")
    assert second.content == first.content


def test_reseeding_removes_the_policies_of_routes_that_never_existed():
    acme = TenantFactory(slug="acme", name="Acme Corp")
    CachePolicyFactory(tenant=acme, name="dashboard", path_pattern=r"^/api/v1/dashboard/")
    CachePolicyFactory(tenant=acme, name="network", path_pattern=r"^/api/v1/mine/")  # an operator's own: kept
    call_command("seed_demo", stdout=io.StringIO())
    names = set(CachePolicy.objects.filter(tenant=acme).values_list("name", flat=True))
    assert "dashboard" not in names and "network" in names
