"""Facts about a request that several hot-path apps need, worked out once: who is anonymous, which route.

- `anonymous_tenant()`: the slug of the tenant whose policies govern requests without a tenant, from the
  one setting `BULWARK["CORE"]["ANONYMOUS_TENANT"]` (env `BULWARK_ANONYMOUS_TENANT`).
- `is_anonymous(request)`: nobody is identified: no tenant, no signed-in user or token, no credentials sent.
- `request_route(request)`: `resolve(request.path_info)` done once per request and kept on it, so rate
  limiting, caching and monitoring share one resolution; `route_pattern(request)` its pattern string.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.urls import ResolverMatch, get_resolver
from django.urls.exceptions import Resolver404

from apps.core.conf import AppSettings, core_settings

ROUTE_ATTR = "_bulwark_route"
PROBE_ATTR = "bulwark_probe"  # set on a view that is a liveness/readiness probe
_UNRESOLVED = object()


def anonymous_tenant(section: AppSettings | None = None) -> str | None:
    """The one setting; `section` is an app whose earlier, deprecated `ANONYMOUS_TENANT` still wins when set."""
    if section is not None:
        earlier = section.ANONYMOUS_TENANT
        if earlier:
            return earlier
    return core_settings.ANONYMOUS_TENANT


def is_anonymous(request: HttpRequest) -> bool:
    """True only when nothing identifies the caller. A signed-in user who belongs to no tenant is not
    anonymous (they have no tenant, but must never share an anonymous cached copy or anonymous identity)."""
    return (
        getattr(request, "tenant", None) is None
        and getattr(getattr(request, "actor", None), "kind", "anonymous") == "anonymous"
        and "HTTP_AUTHORIZATION" not in request.META
    )


def request_route(request: HttpRequest) -> ResolverMatch | None:
    """The request's ResolverMatch (None when no URL pattern matches), resolved at most once per request.

    Django's own `request.resolver_match` is used when it is already there (inside views); before the view
    (middleware) the match is resolved here with the request's urlconf, as Django does, and kept on the
    request. Matches are memoised per (urlconf, path) in a bounded LRU, so a busy path costs a dict lookup.
    """
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match
    path = request.path_info
    cached = request.__dict__.get(ROUTE_ATTR, _UNRESOLVED)
    # Kept with the path it was resolved for: a middleware may still rewrite the path (the API's slash-less
    # form becomes its canonical route), and an early reader must not pin the old path's answer.
    if cached is not _UNRESOLVED and cached[0] == path:
        return cached[1]
    match = _resolve(getattr(request, "urlconf", None) or settings.ROOT_URLCONF, path)
    setattr(request, ROUTE_ATTR, (path, match))
    return match


@lru_cache(maxsize=4096)
def _resolve(urlconf: str, path: str) -> ResolverMatch | None:
    try:
        return get_resolver(urlconf).resolve(path)
    except Resolver404:
        return None


def _forget_routes(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":
        _resolve.cache_clear()


setting_changed.connect(_forget_routes, dispatch_uid="core-request-route-reset")


def is_probe(view_func: object) -> bool:
    """A health probe answers live: no cache serves it and nothing does I/O on its way in."""
    return getattr(view_func, PROBE_ATTR, False)


def route_pattern(request: HttpRequest) -> str | None:
    """The matched URL pattern, e.g. "api/v1/ratelimit/policies/<int:pk>/": bounded, unlike the raw path."""
    match = request_route(request)
    return match.route if match is not None else None
