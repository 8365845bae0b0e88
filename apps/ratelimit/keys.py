"""What a rate limit counts: the key value a policy limits for a request, and where its state lives in the store."""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from django.http import HttpRequest

from apps.core.conf import core_settings
from apps.core.net import client_ip
from apps.core.store import store_key
from apps.ratelimit.matching import CompiledPolicy
from apps.ratelimit.models import RateLimitPolicy

_SAFE_KEY = re.compile(r"^[\w.:@/-]{1,96}$")


def state_key(*, tenant_id: int, policy_id: int, algorithm: str, key: str) -> str:
    if not _SAFE_KEY.match(key):
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return _policy_prefix(core_settings.STORE_KEY_PREFIX, tenant_id, policy_id, algorithm) + key


@lru_cache(maxsize=1024)
def _policy_prefix(store_prefix: str, tenant_id: int, policy_id: int, algorithm: str) -> str:
    """Built once per policy (the store prefix is an argument so a changed setting is a new entry).

    The {t<id>} hash tag puts all keys of one tenant in one Redis Cluster slot: one script per decision.
    The algorithm is part of the key, so switching a policy's algorithm never reads the other's state."""
    return store_key("ratelimit", f"{{t{tenant_id}}}", policy_id, algorithm, "")


def request_key(*, policy: CompiledPolicy, request: HttpRequest) -> str | None:
    """The key value a policy limits for this request; None when the request has none (a missing header)."""
    kind = policy.key_kind
    if kind == RateLimitPolicy.KeyKind.HEADER:
        value = request.META.get(policy.header_meta)
        return f"header:{value}" if value else None
    if kind == RateLimitPolicy.KeyKind.TENANT:
        tenant = getattr(request, "tenant", None)
        return f"tenant:{tenant.pk if tenant is not None else '-'}"
    actor = getattr(request, "actor", None)
    if actor is not None and kind in (RateLimitPolicy.KeyKind.USER, RateLimitPolicy.KeyKind.TOKEN):
        if actor.kind == "token":
            return f"token:{actor.id}"
        if actor.kind == "user" and kind == RateLimitPolicy.KeyKind.USER:
            return f"user:{actor.id}"
    address = getattr(request, "client_ip", None) or client_ip(request)
    return f"ip:{address}"
