"""Rate limiting of every request, after tenant resolution: 429 in the project's error shape, and the
RateLimit header fields on every response a policy applied to."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api.errors import error_body
from apps.core.requests import request_route
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.decision import Decision, decide_request, request_policy_set, request_role
from apps.ratelimit.headers import header_fields

DECISIONS_ATTR = "bulwark_ratelimit_decisions"
DECIDED_IDS_ATTR = "bulwark_ratelimit_policy_ids"


def remember(request: HttpRequest, decision: Decision) -> None:
    """Keep a decision on the request so its headers go out and later doors do not count it again."""
    if decision.policies:
        decisions = getattr(request, DECISIONS_ATTR, None)
        if decisions is None:
            decisions = []
            setattr(request, DECISIONS_ATTR, decisions)
        decisions.append(decision)
        ids = getattr(request, DECIDED_IDS_ATTR, frozenset())
        setattr(request, DECIDED_IDS_ATTR, ids | {d.policy.id for d in decision.policies})


def too_many_requests(decision: Decision) -> JsonResponse:
    deciding = decision.deciding
    retry_after_s = decision.retry_after_s
    reason = " (rate-limit store unreachable)" if deciding.degraded else ""
    body = error_body(
        status_code=429,
        code="rate_limited",
        message=f"Rate limit {deciding.policy.name!r} exceeded{reason}; retry in {retry_after_s} s.",
        retry_after_s=retry_after_s,
        policy=deciding.policy.name,
    )
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(retry_after_s)
    return response


class RateLimitMiddleware:
    """Decides before the rest of the stack runs, so cache hits and unknown paths are limited too.

    Policies may match URL names, so the route is resolved here, once per request (core's `request_route`,
    shared with caching); probes are exempt by route name before anything else is looked up.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._decide(request)
        response = refusal if refusal is not None else self.get_response(request)
        decisions = getattr(request, DECISIONS_ATTR, None)
        if decisions:
            for name, value in header_fields(decisions).items():
                response[name] = value
        return response

    def _decide(self, request: HttpRequest) -> HttpResponse | None:
        match = request_route(request)
        route = match.view_name if match is not None else None
        if route in ratelimit_settings.EXEMPT_ROUTES:
            return None  # before any lookup: probes do no I/O
        policy_set = request_policy_set(request)
        if not policy_set.policies:
            return None
        policies = policy_set.matching(
            route=route, path=request.path_info, method=request.method, role=request_role(request)
        )
        if not policies:
            return None
        decision = decide_request(request=request, policies=policies)
        remember(request, decision)
        return None if decision.allowed else too_many_requests(decision)
