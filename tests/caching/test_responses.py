"""The response cache through the middleware and the decorator: keys, safety, ETag, SWR, stale-if-error, tags."""
from __future__ import annotations

import pytest

from apps.caching import services
from apps.caching.responses import response_cache
from tests.caching import views
from tests.caching.factories import CachePolicyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.caching.urls")]


@pytest.fixture
def viewer(tenant_a, token_client):
    return token_client(tenant_a, "viewer")


def policy(tenant, **fields):
    fields.setdefault("path_pattern", r"^/items/")
    return CachePolicyFactory(tenant=tenant, **fields)


def test_second_request_is_a_hit_without_running_the_view(tenant_a, viewer):
    policy(tenant_a)
    first = viewer.get("/items/1/")
    second = viewer.get("/items/1/")
    assert views.calls["item"] == 1
    assert first.status_code == second.status_code == 200
    assert first["Cache-Status"] == "Bulwark; fwd=miss; stored; ttl=60"
    assert second["Cache-Status"].startswith("Bulwark; hit; ttl=")
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert "Age" in second


def test_requests_without_a_matching_policy_are_not_touched(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/content/")
    viewer.get("/items/1/")
    response = viewer.get("/items/1/")
    assert views.calls["item"] == 2
    assert "Cache-Status" not in response


def test_query_parameter_order_does_not_matter_but_values_do(tenant_a, viewer):
    policy(tenant_a)
    viewer.get("/items/1/?a=1&b=2")
    assert viewer.get("/items/1/?b=2&a=1")["Cache-Status"].startswith("Bulwark; hit")
    assert viewer.get("/items/1/?a=1&b=3")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get("/items/1/?a=1")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert views.calls["item"] == 3


def test_ignored_query_parameters_leave_the_key(tenant_a, viewer):
    policy(tenant_a, ignored_query_params=["utm_source"])
    viewer.get("/items/1/?a=1&utm_source=mail")
    assert viewer.get("/items/1/?a=1&utm_source=ads")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["item"] == 1


def test_one_tenants_response_is_never_served_to_another(tenant_a, tenant_b, token_client):
    policy(tenant_a, vary_on="tenant")
    policy(tenant_b, vary_on="tenant")
    body_a = token_client(tenant_a, "viewer").get("/items/1/").json()
    body_b = token_client(tenant_b, "viewer").get("/items/1/").json()
    assert (body_a["tenant"], body_b["tenant"]) == ("tenant-a", "tenant-b")
    assert views.calls["item"] == 2


def test_tenant_without_a_policy_is_not_served_another_tenants_copy(tenant_a, tenant_b, token_client):
    policy(tenant_a, vary_on="tenant")
    token_client(tenant_a, "viewer").get("/items/1/")
    response = token_client(tenant_b, "viewer").get("/items/1/")
    assert response.json()["tenant"] == "tenant-b"
    assert "Cache-Status" not in response


def test_anonymous_requests_are_never_cached(tenant_a, client):
    policy(tenant_a, vary_on="tenant")
    client.get("/drf/1/")
    client.get("/drf/1/")
    assert views.calls["drf"] == 2


def test_vary_on_user_keeps_one_copy_per_user(tenant_a, token_client):
    policy(tenant_a, vary_on="user")
    first, second = token_client(tenant_a, "viewer"), token_client(tenant_a, "viewer")
    a1, b1, a2 = first.get("/items/1/").json(), second.get("/items/1/").json(), first.get("/items/1/").json()
    assert a1["user"] != b1["user"]
    assert a2 == a1
    assert views.calls["item"] == 2


def test_vary_on_role_separates_roles_and_shares_within_a_role(tenant_a, token_client):
    policy(tenant_a, vary_on="role")
    token_client(tenant_a, "viewer").get("/items/1/")
    token_client(tenant_a, "viewer").get("/items/1/")
    token_client(tenant_a, "admin").get("/items/1/")
    assert views.calls["item"] == 2


def test_vary_on_tenant_shares_between_users_of_the_tenant(tenant_a, token_client, member_client):
    policy(tenant_a, vary_on="tenant")
    token_client(tenant_a, "viewer").get("/items/1/")
    assert member_client(tenant_a, "admin").get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["item"] == 1


def test_listed_request_headers_enter_the_key(tenant_a, viewer):
    policy(tenant_a, vary_headers=["X-Region"])
    viewer.get("/items/1/", HTTP_X_REGION="eu")
    assert viewer.get("/items/1/", HTTP_X_REGION="eu")["Cache-Status"].startswith("Bulwark; hit")
    assert viewer.get("/items/1/", HTTP_X_REGION="us")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get("/items/1/", HTTP_X_OTHER="x")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert views.calls["item"] == 3


def test_error_responses_are_not_cached_unless_listed(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/error/")
    viewer.get("/error/")
    response = viewer.get("/error/")
    assert views.calls["error"] == 2
    assert response["Cache-Status"] == "Bulwark; fwd=miss; detail=not-stored-status"


def test_listed_error_statuses_are_cached(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/error/", cacheable_statuses=[200, 404])
    viewer.get("/error/")
    response = viewer.get("/error/")
    assert response.status_code == 404
    assert views.calls["error"] == 1


@pytest.mark.parametrize("path, name, reason", [
    ("/cookie/", "cookie", "set-cookie"),
    ("/private/", "private", "private"),
    ("/big/", "big", "too-large"),
])
def test_unsafe_or_oversized_responses_are_not_stored(tenant_a, viewer, path, name, reason):
    policy(tenant_a, path_pattern=f"^{path}", max_body_bytes=1000, vary_on="tenant")
    viewer.get(path)
    response = viewer.get(path)
    assert views.calls[name] == 2
    assert response["Cache-Status"] == f"Bulwark; fwd=miss; detail=not-stored-{reason}"


def test_a_response_varying_on_a_header_outside_the_key_is_not_stored(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/localised/", vary_on="tenant")
    assert viewer.get("/localised/", HTTP_ACCEPT_LANGUAGE="fr").json() == {"greeting": "bonjour"}
    english = viewer.get("/localised/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json() == {"greeting": "hello"}
    assert english["Cache-Status"] == "Bulwark; fwd=miss; detail=not-stored-vary"


def test_a_response_varying_on_a_listed_header_is_stored_per_value(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/localised/", vary_on="tenant", vary_headers=["Accept-Language"])
    viewer.get("/localised/", HTTP_ACCEPT_LANGUAGE="fr")
    assert viewer.get("/localised/", HTTP_ACCEPT_LANGUAGE="en").json() == {"greeting": "hello"}
    assert viewer.get("/localised/", HTTP_ACCEPT_LANGUAGE="fr")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["localised"] == 2


def test_private_responses_are_stored_when_the_policy_varies_on_user(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/private/", vary_on="user")
    viewer.get("/private/")
    viewer.get("/private/")
    assert views.calls["private"] == 1


def test_if_none_match_answers_304_without_the_view(tenant_a, viewer):
    policy(tenant_a)
    etag = viewer.get("/items/1/")["ETag"]
    response = viewer.get("/items/1/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Status"].startswith("Bulwark; hit")
    assert viewer.get("/items/1/", HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert views.calls["item"] == 1


def test_head_is_served_from_the_get_entry(tenant_a, viewer):
    policy(tenant_a)
    viewer.get("/items/1/")
    response = viewer.head("/items/1/")
    assert response.status_code == 200
    assert response["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["item"] == 1


def test_drf_responses_are_rendered_and_cached(tenant_a, viewer):
    policy(tenant_a, path_pattern=r"^/drf/")
    first = viewer.get("/drf/1/", HTTP_ACCEPT="application/json")
    second = viewer.get("/drf/1/", HTTP_ACCEPT="application/json")
    assert second.json() == first.json() == {"pk": 1, "version": "v1"}
    assert views.calls["drf"] == 1
    # Content negotiation: another Accept is another representation, never the JSON one.
    assert viewer.get("/drf/1/", HTTP_ACCEPT="text/html")["Cache-Status"].startswith("Bulwark; fwd=miss")


def test_route_name_policies_match_by_url_name(tenant_a, viewer):
    policy(tenant_a, path_pattern="", route_name="item")
    viewer.get("/items/1/")
    viewer.get("/items/1/")
    assert views.calls["item"] == 1


def test_disabled_policy_does_nothing(tenant_a, viewer):
    policy(tenant_a, enabled=False)
    viewer.get("/items/1/")
    viewer.get("/items/1/")
    assert views.calls["item"] == 2


# -- freshness on a fake clock ------------------------------------------------------------------------------
def test_stale_while_revalidate_serves_stale_at_once_and_refreshes_once(tenant_a, viewer, clock, sync_refresh):
    policy(tenant_a, ttl_s=10, stale_while_revalidate_s=30)
    viewer.get("/items/1/")
    views.state["version"] = "v2"
    clock.advance(15)
    stale = viewer.get("/items/1/")
    assert stale.json()["version"] == "v1"
    assert stale["Cache-Status"] == "Bulwark; hit; ttl=-5"
    assert len(sync_refresh) == 1
    assert views.calls["item"] == 2
    fresh = viewer.get("/items/1/")
    assert fresh.json()["version"] == "v2"
    assert fresh["Cache-Status"].startswith("Bulwark; hit; ttl=")


def test_only_one_background_refresh_runs_for_many_stale_requests(tenant_a, viewer, clock, monkeypatch):
    spawned = []
    monkeypatch.setattr(response_cache, "spawn", spawned.append)
    policy(tenant_a, ttl_s=10, stale_while_revalidate_s=30)
    viewer.get("/items/1/")
    clock.advance(15)
    for _ in range(5):
        assert viewer.get("/items/1/").json()["version"] == "v1"
    assert len(spawned) == 1
    assert views.calls["item"] == 1


def test_past_the_swr_window_the_request_waits_for_the_origin(tenant_a, viewer, clock, sync_refresh):
    policy(tenant_a, ttl_s=10, stale_while_revalidate_s=30)
    viewer.get("/items/1/")
    views.state["version"] = "v2"
    clock.advance(41)
    response = viewer.get("/items/1/")
    assert response.json()["version"] == "v2"
    assert sync_refresh == []


def test_stale_if_error_serves_the_stale_copy_when_the_origin_fails(tenant_a, viewer, clock):
    policy(tenant_a, ttl_s=10, stale_if_error_s=60)
    viewer.get("/items/1/")
    views.state["fail"] = True
    clock.advance(30)
    response = viewer.get("/items/1/")
    assert response.status_code == 200
    assert response.json()["version"] == "v1"
    assert response["Cache-Status"] == "Bulwark; fwd=stale; fwd-status=503; ttl=-20"
    clock.advance(60)
    assert viewer.get("/items/1/").status_code == 503


def test_decorator_caches_and_serves_stale_when_the_view_raises(tenant_a, viewer, clock):
    CachePolicyFactory(tenant=tenant_a, name="decorated", path_pattern="", route_name="nothing-else",
                       ttl_s=10, stale_if_error_s=60)
    viewer.get("/decorated/")
    assert viewer.get("/decorated/")["Cache-Status"].startswith("Bulwark; hit")
    assert views.calls["decorated"] == 1
    views.state["fail"] = True
    clock.advance(20)
    response = viewer.get("/decorated/")
    assert response.status_code == 200
    assert response["Cache-Status"].startswith("Bulwark; fwd=stale; fwd-status=500")


def test_decorator_reraises_when_there_is_no_stale_copy(tenant_a, viewer):
    CachePolicyFactory(tenant=tenant_a, name="decorated", path_pattern="", route_name="nothing-else")
    views.state["fail"] = True
    viewer.raise_request_exception = True
    with pytest.raises(RuntimeError):
        viewer.get("/decorated/")


def test_early_refresh_fires_near_expiry_when_the_draw_says_so(tenant_a, viewer, clock, sync_refresh,
                                                               monkeypatch):
    policy(tenant_a, ttl_s=10, early_refresh_beta=1.0)
    views.state["origin_s"] = 0.01  # on the fake clock
    viewer.get("/items/1/")
    # -ln(p) = 27.6 times the origin's duration reaches past the last millisecond of the TTL: refresh now.
    monkeypatch.setattr(response_cache.rand, "random", lambda: 1e-12)
    clock.advance(9.999)
    assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")
    assert len(sync_refresh) == 1


def test_early_refresh_stays_quiet_far_from_expiry(tenant_a, viewer, clock, sync_refresh, monkeypatch):
    policy(tenant_a, ttl_s=100, early_refresh_beta=1.0)
    viewer.get("/items/1/")
    monkeypatch.setattr(response_cache.rand, "random", lambda: 0.5)
    clock.advance(1)
    viewer.get("/items/1/")
    assert sync_refresh == []


# -- adaptive TTL --------------------------------------------------------------------------------------------
def test_adaptive_ttl_grows_while_content_is_unchanged_and_shrinks_on_change(tenant_a, viewer, clock,
                                                                              sync_refresh, monkeypatch):
    # The item view's body carries its call number; make it stable so only `version` decides.
    monkeypatch.setattr(views, "_count", lambda name: 0)
    policy(tenant_a, ttl_s=10, adaptive_ttl=True, ttl_min_s=5, ttl_max_s=30, stale_while_revalidate_s=1000)
    assert viewer.get("/items/1/")["Cache-Status"].endswith("ttl=10")

    def revalidate() -> int:
        clock.advance(100)  # past any TTL, within the SWR window: one background refresh runs
        viewer.get("/items/1/")
        return int(viewer.get("/items/1/")["Cache-Status"].rsplit("ttl=", 1)[1])

    assert revalidate() == 15
    assert revalidate() == 23
    assert revalidate() == 30  # capped by ttl_max_s
    views.state["version"] = "v2"
    assert revalidate() == 15
    views.state["version"] = "v3"
    assert revalidate() == 7
    views.state["version"] = "v4"
    assert revalidate() == 5  # floored by ttl_min_s
    assert len(sync_refresh) == 6


# -- invalidation ---------------------------------------------------------------------------------------------
def test_tag_invalidation_drops_only_tagged_entries(tenant_a, viewer):
    policy(tenant_a, tags=["items", "item:{pk}"])
    viewer.get("/items/1/")
    viewer.get("/items/2/")
    services.invalidate(tags=["item:1"], tenant=tenant_a)
    assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get("/items/2/")["Cache-Status"].startswith("Bulwark; hit")
    services.invalidate(tags=["items"], tenant=tenant_a)
    assert viewer.get("/items/2/")["Cache-Status"].startswith("Bulwark; fwd=miss")


def test_invalidation_of_one_tenant_leaves_the_other_alone(tenant_a, tenant_b, token_client):
    policy(tenant_a, tags=["items"])
    policy(tenant_b, tags=["items"])
    a, b = token_client(tenant_a, "viewer"), token_client(tenant_b, "viewer")
    a.get("/items/1/")
    b.get("/items/1/")
    services.invalidate(tags=["items"], tenant=tenant_a)
    assert a.get("/items/1/")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert b.get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")


def test_invalidated_entries_are_not_served_even_as_stale(tenant_a, viewer, clock, sync_refresh):
    policy(tenant_a, ttl_s=10, stale_while_revalidate_s=100, stale_if_error_s=100, tags=["items"])
    viewer.get("/items/1/")
    clock.advance(20)
    services.invalidate(tags=["items"], tenant=tenant_a)
    views.state["fail"] = True
    assert viewer.get("/items/1/").status_code == 503


def test_policy_and_tenant_wide_invalidation(tenant_a, viewer):
    item_policy = policy(tenant_a)
    policy(tenant_a, path_pattern=r"^/content/")
    viewer.get("/items/1/")
    viewer.get("/content/")
    services.cache_invalidate(tenant=tenant_a, policy=item_policy)
    assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get("/content/")["Cache-Status"].startswith("Bulwark; hit")
    services.cache_invalidate(tenant=tenant_a, everything=True)
    assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get("/content/")["Cache-Status"].startswith("Bulwark; fwd=miss")


def test_saving_a_watched_model_invalidates_the_policy_tags(tenant_a, viewer, make_member,
                                                            django_capture_on_commit_callbacks):
    from apps.tenancy.models import Membership

    user = make_member(tenant_a, "viewer")
    membership = Membership.objects.get(user=user)
    other = Membership.objects.get(user=make_member(tenant_a, "viewer"))
    with django_capture_on_commit_callbacks(execute=True):  # committed: every process recompiles its watches
        policy(tenant_a, tags=["item:{pk}"], invalidate_on_models=["bulwark_tenancy.Membership"])
    viewer.get(f"/items/{membership.pk}/")
    viewer.get(f"/items/{other.pk}/")
    with django_capture_on_commit_callbacks(execute=True):
        membership.role = "operator"
        membership.save()
    assert viewer.get(f"/items/{membership.pk}/")["Cache-Status"].startswith("Bulwark; fwd=miss")
    assert viewer.get(f"/items/{other.pk}/")["Cache-Status"].startswith("Bulwark; hit")
    other_pk = other.pk
    with django_capture_on_commit_callbacks(execute=True):
        other.delete()
    assert viewer.get(f"/items/{other_pk}/")["Cache-Status"].startswith("Bulwark; fwd=miss")


def test_changing_a_policy_retires_its_entries(tenant_a, viewer, django_capture_on_commit_callbacks):
    item_policy = policy(tenant_a)
    viewer.get("/items/1/")
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_update(policy=item_policy, data={"ttl_s": 30})
    response = viewer.get("/items/1/")
    assert response["Cache-Status"] == "Bulwark; fwd=miss; stored; ttl=30"


def test_a_hit_makes_no_database_query(tenant_a, viewer, django_assert_num_queries):
    policy(tenant_a)
    viewer.get("/items/1/")
    viewer.get("/items/1/")
    with django_assert_num_queries(0):
        assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")


def test_a_rate_limited_client_gets_its_429_and_never_a_cached_body(tenant_a, viewer):
    from apps.ratelimit.stats import stats_counters
    from tests.ratelimit.factories import RateLimitPolicyFactory

    RateLimitPolicyFactory(tenant=tenant_a, match_kind="any", name="default", rate=2)
    policy(tenant_a)
    assert viewer.get("/items/1/").status_code == 200
    assert viewer.get("/items/1/")["Cache-Status"].startswith("Bulwark; hit")
    refused = viewer.get("/items/1/")
    assert refused.status_code == 429
    assert "Cache-Status" not in refused
    stats_counters.take()  # the rate limiter's counts of a rolled-back test have no rows to go to


@pytest.fixture
def breakers_without_flusher(monkeypatch):
    """The resilience registry without its background flusher, whose connection would outlive the test."""
    from apps.resilience.runtime import registry

    registry.stop()
    monkeypatch.setattr(registry, "background", False)
    registry.breakers.clear()
    yield registry
    registry.stop()
    registry.breakers.clear()


def test_stale_if_error_when_the_views_breaker_is_forced_open(tenant_a, viewer, clock, breakers_without_flusher,
                                                              django_capture_on_commit_callbacks):
    from apps.resilience.services import breaker_force
    from tests.resilience.factories import BreakerPolicyFactory

    breaker_policy = BreakerPolicyFactory(tenant=tenant_a, name="payments")
    policy(tenant_a, path_pattern="^/payments/", ttl_s=10, stale_if_error_s=60)
    assert viewer.get("/payments/").status_code == 200
    views.state["version"] = "v2"
    with django_capture_on_commit_callbacks(execute=True):
        breaker_force(policy=breaker_policy, forced_state="forced_open")
    clock.advance(30)
    viewer.raise_request_exception = False  # as in production: Django turns the exception into a 500
    response = viewer.get("/payments/")
    assert response.status_code == 200
    assert response.json()["version"] == "v1"
    assert response["Cache-Status"].startswith("Bulwark; fwd=stale; fwd-status=5")
    assert views.calls["payments"] == 2  # the view ran, its breaker refused the call
