"""Key composition: the tenant always, the policy, host and path, sorted query, chosen headers, principal.

Every key of a tenant carries the hash tag `{c<tenant id>}` so an entry, its lock and its tag versions live
in one Redis Cluster slot and one Lua call can read them together.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

from apps.core.store import store_key

TENANT_TAG = "__tenant__"


def scope(tenant_id: int | None) -> str:
    return "{cg}" if tenant_id is None else f"{{c{tenant_id}}}"


def normalised_query(query_string: str, ignored: Iterable[str] = ()) -> str:
    """Same parameters in any order give the same string; blank values are kept (`?a=` is not `?`)."""
    skip = set(ignored)
    pairs = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k not in skip]
    return urlencode(sorted(pairs))


def principal_part(vary_on: str, *, role: str | None, actor_kind: str, actor_id: str, anonymous: bool = False) -> str:
    """Anonymous requests share one copy whatever the policy varies on; "a" is no signed-in principal's part."""
    if anonymous:
        return "a"
    if vary_on == "user":
        return f"u:{actor_kind}:{actor_id}"
    if vary_on == "role":
        return f"r:{role or ''}"
    return "t"


def response_key(
    *,
    tenant_id: int,
    policy_id: int,
    host: str,
    path: str,
    query_string: str,
    ignored_query_params: Iterable[str],
    headers: Mapping[str, str],
    vary_headers: Iterable[str],
    principal: str,
) -> str:
    # Accept is always in the key: DRF negotiates JSON or HTML on it.
    names = sorted({"accept", *(h.lower() for h in vary_headers)})
    parts = [
        host.lower(),
        path,
        normalised_query(query_string, ignored_query_params),
        *(f"{name}={headers.get(name, '').strip()}" for name in names),
        principal,
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return store_key("cache", scope(tenant_id), "r", policy_id, digest)


def data_key(*, tenant_id: int | None, key: str) -> str:
    return store_key("cache", scope(tenant_id), "d", hashlib.sha256(key.encode()).hexdigest()[:40])


def lock_key(entry_key: str, replacing: str = "") -> str:
    """The stampede lock of a missing entry, or (`replacing`) of the replacement of one stored version."""
    return f"{entry_key}:lock:{replacing}" if replacing else f"{entry_key}:lock"


def refresh_lock_key(entry_key: str, stored_at: float) -> str:
    return f"{entry_key}:refresh:{stored_at!r}"


def tag_key(*, tenant_id: int | None, tag: str) -> str:
    return store_key("cache", scope(tenant_id), "tag", hashlib.sha256(tag.encode()).hexdigest()[:32])


def policy_tag(policy_id: int) -> str:
    return f"__policy__:{policy_id}"


def tenant_pattern(tenant_id: int | None) -> str:
    """A SCAN pattern of every key of one tenant's cache."""
    return store_key("cache", scope(tenant_id), "*")
