"""`@cache_policy("name")`: cache a view by a named policy of the request's tenant, without the middleware."""
from __future__ import annotations

import functools
import logging

from django.http import HttpRequest, HttpResponseServerError

from apps.caching.middleware import DECORATED_ATTR
from apps.caching.responses import response_cache
from apps.caching.snapshot import policies_for_request

log = logging.getLogger(__name__)


def cache_policy(name: str):
    def decorate(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            policy, anonymous = None, False
            if request.method in ("GET", "HEAD"):
                policies, anonymous = policies_for_request(request)
                policy = policies.by_name.get(name) if policies is not None else None
            if policy is None or request.method not in policy.methods or not policy.applies_to(anonymous=anonymous):
                return view(request, *args, **kwargs)

            def origin(req):
                return view(req, *args, **kwargs)

            hit = response_cache.before(request, policy, kwargs, origin)
            if hit is not None:
                return hit
            try:
                response = view(request, *args, **kwargs)
            except Exception:
                failure = HttpResponseServerError()
                answer = response_cache.after(request, failure)
                if answer is failure:
                    raise
                # The view raised (e.g. its breaker is open): stale-if-error answers with the stale copy.
                log.warning("view of cache policy %s raised; served the stale copy", name, exc_info=True)
                return answer
            return response_cache.after(request, response)

        setattr(wrapped, DECORATED_ATTR, name)
        return wrapped

    return decorate
