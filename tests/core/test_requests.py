"""Request facts shared by the hot-path apps: the anonymous tenant setting, the anonymous test, one URL resolution."""
from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from django.urls import resolve

from apps.core.conf import core_settings
from apps.core.context import ANONYMOUS, Actor
from apps.core.requests import anonymous_tenant, is_anonymous, request_route, route_pattern


def with_core(**values) -> override_settings:
    return override_settings(BULWARK={**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), **values}})


def test_the_anonymous_tenant_is_the_one_core_setting():
    with with_core(ANONYMOUS_TENANT="acme"):
        assert anonymous_tenant() == "acme"
    with with_core(ANONYMOUS_TENANT=None):
        assert anonymous_tenant() is None


def test_a_malformed_anonymous_tenant_is_refused_by_name():
    with with_core(ANONYMOUS_TENANT="not a slug"), pytest.raises(ImproperlyConfigured, match="ANONYMOUS_TENANT"):
        core_settings.validate()


def test_the_environment_names_the_anonymous_tenant_under_both_names(monkeypatch):
    import importlib

    import config.settings as settings_module

    try:
        monkeypatch.delenv("BULWARK_ANONYMOUS_TENANT", raising=False)
        monkeypatch.setenv("BULWARK_RATELIMIT_ANONYMOUS_TENANT", "old")
        assert importlib.reload(settings_module).BULWARK["CORE"]["ANONYMOUS_TENANT"] == "old"
        monkeypatch.setenv("BULWARK_ANONYMOUS_TENANT", "new")
        assert importlib.reload(settings_module).BULWARK["CORE"]["ANONYMOUS_TENANT"] == "new"
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)


def test_anonymous_means_no_tenant_no_principal_and_no_credentials():
    factory = RequestFactory()
    request = factory.get("/")
    request.actor = ANONYMOUS
    assert is_anonymous(request)

    signed_in = factory.get("/")
    signed_in.actor = Actor(kind="user", id="7", display="someone without a tenant")
    assert not is_anonymous(signed_in)

    with_credentials = factory.get("/", HTTP_AUTHORIZATION="Bearer bw_wrong")
    assert not is_anonymous(with_credentials)

    member = factory.get("/")
    member.tenant = object()
    assert not is_anonymous(member)


def test_the_route_is_resolved_once_per_request_and_shared():
    from apps.core.requests import _resolve

    _resolve.cache_clear()  # matches are memoised per path across requests: start from none
    request = RequestFactory().get("/api/v1/ratelimit/policies/5/")
    with mock.patch("apps.core.requests.get_resolver", wraps=__import__("django.urls").urls.get_resolver) as spy:
        first, second = request_route(request), request_route(request)
    assert spy.call_count == 1
    assert first is second
    assert first.url_name == "ratelimit-policy-detail"
    assert first.kwargs == {"pk": "5"}
    assert route_pattern(request) == resolve("/api/v1/ratelimit/policies/5/").route
    assert "5" not in route_pattern(request)


def test_a_path_that_matches_nothing_is_resolved_once_too():
    from apps.core.requests import _resolve

    _resolve.cache_clear()
    request = RequestFactory().get("/no/such/page")
    with mock.patch("apps.core.requests.get_resolver", wraps=__import__("django.urls").urls.get_resolver) as spy:
        assert request_route(request) is None
        assert route_pattern(request) is None
    assert spy.call_count == 1


def test_a_path_rewritten_after_an_early_read_is_resolved_again():
    """An observer may read the route before the API middleware turns a slash-less path into its canonical
    route; the rewritten request must not keep the old path's answer (no match)."""
    request = RequestFactory().get("/api/v1/ratelimit/check")
    assert request_route(request) is None
    request.path_info = "/api/v1/ratelimit/check/"
    assert request_route(request).view_name == "v1:ratelimit-check"


def test_djangos_own_resolver_match_is_used_when_there(client):
    request = RequestFactory().get("/healthz")
    request.resolver_match = resolve("/healthz")
    with mock.patch("apps.core.requests.get_resolver") as spy:
        assert request_route(request) is request.resolver_match
    spy.assert_not_called()


def test_a_request_urlconf_is_honoured():
    request = RequestFactory().get("/healthz")
    request.urlconf = "tests.core.urls_without_health"
    assert request_route(request) is None
