"""RateLimit header fields, as specified by draft-ietf-httpapi-ratelimit-headers-11.

    RateLimit-Policy: "default";q=100;w=60
    RateLimit: "default";r=42;t=1

Both are Structured Field Lists (RFC 9651) with one String item per enforcing policy that applied,
the deciding policy first: `q` the quota, `w` the window in seconds in which the quota is granted
afresh, `r` the available quota and `t` the effective window (-11, 4.1.2): the seconds within which
no more than `r` units can pass. On a refusal `t` names the same moment as Retry-After (-11, section 6:
Retry-After must not point earlier than the end of the effective window); both are rounded up. Shadow
policies never appear: a client must not learn of limits that do not apply to it.
"""
from __future__ import annotations

from collections.abc import Iterable

from apps.ratelimit.decision import Decision, PolicyDecision

DRAFT = "draft-ietf-httpapi-ratelimit-headers-11"


def _ordered(decisions: Iterable[Decision]) -> list[PolicyDecision]:
    decisions = list(decisions)
    if len(decisions) == 1 and len(decisions[0].policies) == 1:  # the usual request: one policy, nothing to order
        only = decisions[0].policies[0]
        return [only] if only.policy.enforce else []
    deciding = [d.deciding for d in decisions if d.deciding is not None]
    if deciding:
        # The decision of the whole request is the strictest of its parts.
        first = max(deciding, key=lambda d: (not d.outcome.allowed, d.outcome.retry_after_us, -d.outcome.remaining))
        deciding = [first]
    seen, ordered = set(), []
    for item in deciding + [d for decision in decisions for d in decision.enforced]:
        if item.policy.id not in seen:
            seen.add(item.policy.id)
            ordered.append(item)
    return ordered


def header_fields(decisions: Iterable[Decision]) -> dict[str, str]:
    ordered = _ordered(decisions)
    if not ordered:
        return {}
    return {
        "RateLimit-Policy": ", ".join(
            f'"{d.policy.name}";q={d.outcome.limit};w={d.policy.limit.quota_window_s}' for d in ordered
        ),
        "RateLimit": ", ".join(f'"{d.policy.name}";r={d.outcome.remaining};t={d.outcome.window_s}' for d in ordered),
    }
