"""Discovery for the automatic tenant-isolation test: every API route and admin page of a tenant-owned model."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import factory
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.viewsets import ViewSetMixin

import tests
from apps.tenancy.models import TenantOwned


@dataclass(frozen=True)
class ApiRoute:
    name: str  # namespaced URL name, e.g. "v1:member-detail"
    viewset: type
    actions: tuple[tuple[str, str], ...]  # (http method, action)
    detail: bool

    @property
    def model(self):
        return self.viewset.queryset.model

    @property
    def lookup_kwarg(self) -> str:
        return self.viewset.lookup_url_kwarg or self.viewset.lookup_field


def _walk(patterns, namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


def tenant_api_routes() -> list[ApiRoute]:
    routes = []
    for name, pattern in _walk(get_resolver().url_patterns):
        viewset = getattr(pattern.callback, "cls", None)
        actions = getattr(pattern.callback, "actions", None)
        if viewset is None or actions is None or not issubclass(viewset, ViewSetMixin):
            continue
        queryset = getattr(viewset, "queryset", None)
        if queryset is None or not issubclass(queryset.model, TenantOwned):
            continue
        lookup = viewset.lookup_url_kwarg or viewset.lookup_field
        detail = f"<{lookup}>" in str(pattern.pattern) or f"(?P<{lookup}>" in str(pattern.pattern)
        routes.append(ApiRoute(name, viewset, tuple(sorted(actions.items())), detail))
    return routes


def tenant_admin_models() -> list[type]:
    return [model for model in admin.site._registry if issubclass(model, TenantOwned)]


def factories_by_model() -> dict[type, type]:
    """Every DjangoModelFactory in tests/factories.py and tests/<app>/factories.py."""
    modules = [importlib.import_module("tests.factories")]
    root = Path(tests.__file__).parent
    for info in pkgutil.iter_modules([str(root)]):
        if info.ispkg and (root / info.name / "factories.py").exists():
            modules.append(importlib.import_module(f"tests.{info.name}.factories"))
    found = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, factory.django.DjangoModelFactory):
                model = value._meta.model
                if model is not None and value.__module__ == module.__name__:
                    found.setdefault(model, value)
    return found
