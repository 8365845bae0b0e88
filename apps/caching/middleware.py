"""Serves cached responses of matching policies without running the view, and stores what the view answers.

Runs after the rate limiter: a limited client gets its 429, never a cached body. The match needs the
resolved route, so the lookup happens in `process_view`, after URL resolution, not in `__call__`.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from apps.caching.responses import PLAN_ATTR, REFRESH_ATTR, response_cache
from apps.caching.snapshot import policies_for_request
from apps.core.requests import is_probe, request_route

DECORATED_ATTR = "_bulwark_cache_policy"


class CacheMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if PLAN_ATTR in request.__dict__:
            response = response_cache.after(request, response)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponseBase | None:
        if (
            request.method not in ("GET", "HEAD")
            or getattr(request, REFRESH_ATTR, False)
            or getattr(view_func, DECORATED_ATTR, None)
            or is_probe(view_func)
        ):
            return None
        policies, anonymous = policies_for_request(request)
        if policies is None:
            return None
        match = request_route(request)
        route_names = (match.view_name, match.url_name or "") if match is not None else ()
        policy = policies.match(method=request.method, path=request.path, route_names=route_names,
                                anonymous=anonymous)
        if policy is None:
            return None
        return response_cache.before(request, policy, view_kwargs, self.get_response)
