"""DRF throttle for per-view limits, deciding through the same service as the middleware."""
from __future__ import annotations

from rest_framework.throttling import BaseThrottle

from apps.ratelimit.decision import decide_request, request_policy_set, request_role
from apps.ratelimit.middleware import DECIDED_IDS_ATTR, remember


class BulwarkRateThrottle(BaseThrottle):
    """Applies the tenant's policies named in the view's `ratelimit_policies` (e.g. ["expensive"]), or,
    without that attribute, every policy matching the request (for projects without the middleware).

    Policies the middleware already decided for this request are skipped, so nothing is counted twice.
    A name the tenant has no enabled policy for limits nothing. The RateLimit header fields of its
    decisions are written by the middleware when it is installed; without it, a refusal still carries
    Retry-After (DRF's handler).
    """

    def __init__(self) -> None:
        self.decision = None

    def allow_request(self, request, view) -> bool:
        django_request = request._request
        policy_set = request_policy_set(django_request)
        names = getattr(view, "ratelimit_policies", None)
        if names is None:
            match = django_request.resolver_match
            policies = policy_set.matching(
                route=match.view_name if match is not None else None,
                path=django_request.path_info,
                method=django_request.method,
                role=request_role(django_request),
            )
        else:
            policies = [policy_set.by_name[name] for name in names if name in policy_set.by_name]
        decided = getattr(django_request, DECIDED_IDS_ATTR, frozenset())
        policies = [p for p in policies if p.id not in decided]
        self.decision = decide_request(request=django_request, policies=policies)
        remember(django_request, self.decision)
        return self.decision.allowed

    def wait(self) -> float | None:
        return float(self.decision.retry_after_s) if self.decision is not None else None
