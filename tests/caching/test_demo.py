"""The demo seed creates the brief's cache policies once, however often it runs."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.caching.models import CachePolicy

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_policies_idempotently():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    ttl = dict(CachePolicy.objects.filter(tenant__slug="acme").values_list("name", "ttl_s"))
    assert ttl == {"dashboard": 60, "security": 120, "network": 180}
    assert CachePolicy.objects.filter(tenant__slug="globex").count() == 3
