"""seed_demo (tenancy) seeds the demo tenants, then calls each app's `demo` hook once per tenant."""
from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import call_command

pytestmark = pytest.mark.django_db

calls: list[str] = []


def record_seed(*, tenant, stdout) -> None:
    calls.append(tenant.slug)


def test_an_app_contributes_demo_data_through_its_appconfig_hook(monkeypatch):
    calls.clear()
    for config in apps.get_app_configs():  # only the hook under test
        monkeypatch.setattr(config, "demo", None, raising=False)
    monkeypatch.setattr(apps.get_app_config("bulwark_resilience"), "demo", f"{__name__}.record_seed")
    call_command("seed_demo", stdout=io.StringIO())
    assert sorted(calls) == ["acme", "globex"]


def test_the_apps_declare_their_demo_hook():
    declared = {config.label: config.demo for config in apps.get_app_configs() if getattr(config, "demo", None)}
    assert declared == {
        "bulwark_ratelimit": "apps.ratelimit.demo.seed",
        "bulwark_caching": "apps.caching.demo.seed",
        "bulwark_resilience": "apps.resilience.demo.seed",
        "bulwark_jobs": "apps.jobs.demo.seed",
        "bulwark_console": "apps.console.demo.seed",
    }
