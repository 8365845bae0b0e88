"""Every request is recorded under its tenant, however it was identified: a bearer token, a session, DRF's
own authentication when the tenant middleware is not installed, or the anonymous tenant; platform traffic
(no tenant) only when nothing names one."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/"


def tenants(sink) -> dict:
    counts: dict = {}
    for (tenant_id, route, _method, _minute), agg in sink.take().items():
        counts[(tenant_id, route)] = counts.get((tenant_id, route), 0) + agg.count
    return counts


@pytest.fixture
def anonymous_tenant(settings):
    def use(slug):
        settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), "ANONYMOUS_TENANT": slug}}
    return use


def test_a_token_request_is_its_tokens_tenant(sink, tenant_a, token_client):
    assert token_client(tenant_a, "viewer").get(ME).status_code == 200
    assert tenants(sink) == {(tenant_a.pk, "api/v1/me/"): 1}


def test_a_session_request_is_its_members_tenant(sink, tenant_a, tenant_b, member_client):
    assert member_client(tenant_b, "viewer").get(ME).status_code == 200
    assert tenants(sink) == {(tenant_b.pk, "api/v1/me/"): 1}


def test_an_anonymous_request_is_the_anonymous_tenants(sink, tenant_a, client, anonymous_tenant):
    anonymous_tenant(tenant_a.slug)
    assert client.get("/healthz").status_code == 200
    assert client.get(ME).status_code in (401, 403)
    assert tenants(sink) == {(tenant_a.pk, "healthz"): 1, (tenant_a.pk, "api/v1/me/"): 1}


def test_without_an_anonymous_tenant_anonymous_requests_are_platform_traffic(sink, client, anonymous_tenant):
    anonymous_tenant(None)
    client.get("/healthz")
    assert tenants(sink) == {(None, "healthz"): 1}


def test_a_refused_token_is_never_the_anonymous_tenants(sink, tenant_a, client, anonymous_tenant):
    """A bad credential names nobody: platform traffic, not the anonymous tenant's (nor any tenant's)."""
    anonymous_tenant(tenant_a.slug)
    assert client.get(ME, HTTP_AUTHORIZATION="Bearer bwk_nope_nope").status_code == 401
    assert tenants(sink) == {(None, "api/v1/me/"): 1}


def test_drf_authentication_alone_names_the_tenant(sink, tenant_a, token_client, settings):
    """Installed without the tenant middleware: DRF's token authentication sets the tenant on the request
    inside the view, which is the same request object the monitoring middleware reads after the response."""
    settings.MIDDLEWARE = ["apps.monitoring.middleware.MonitoringMiddleware",
                           "django.contrib.sessions.middleware.SessionMiddleware",
                           "django.contrib.auth.middleware.AuthenticationMiddleware"]
    client = token_client(tenant_a, "viewer")
    client.raise_request_exception = False  # this view needs the tenant middleware's actor: a 500, measured too
    client.get(ME)
    assert tenants(sink) == {(tenant_a.pk, "api/v1/me/"): 1}


def test_the_anonymous_tenant_is_resolved_when_the_batch_is_taken(sink, tenant_a, tenant_b, anonymous_tenant):
    """The request path only marks a request anonymous; the flush names the tenant (one lookup per batch)."""
    from apps.monitoring.recorder import ANONYMOUS

    anonymous_tenant(tenant_b.slug)
    sink.record(ANONYMOUS, "healthz", "GET", 200, 1.0)
    sink.record(tenant_b.pk, "healthz", "GET", 200, 1.0)
    assert tenants(sink) == {(tenant_b.pk, "healthz"): 2}
