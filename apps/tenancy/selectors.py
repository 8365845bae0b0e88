"""Reads of tenancy: memberships of a user, and bearer-token resolution with a warm in-process cache."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from apps.core.snapshot import CompiledSnapshot
from apps.tenancy import tokens
from apps.tenancy.models import ApiToken, Membership, Tenant

LAST_USED_WRITE_INTERVAL = timedelta(seconds=60)
MAX_CACHED_TOKENS = 10_000


def memberships_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.active().filter(user=user).select_related("tenant").order_by("tenant__slug")


@dataclass
class ResolvedToken:
    id: int
    name: str
    prefix: str
    secret_hash: str
    role: str
    tenant: Tenant
    expires_at: datetime | None
    revoked: bool
    last_used_at: datetime | None

    def principal_display(self) -> str:
        return f"token:{self.name} (bwk_{self.prefix})"


class TokenRejected(Exception):
    def __init__(self, message: str, status: int = 401, code: str = "authentication_failed") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def _build_token_cache(_key) -> dict[str, ResolvedToken | None]:
    return {}


# Any change to a token or tenant bumps this version, so a revoked token stops working everywhere within
# the snapshot interval while a warm token costs no database query.
token_cache = CompiledSnapshot("tenancy.tokens", _build_token_cache)


def token_cache_invalidate(**_signal_kwargs) -> None:
    """Connected to every save and delete of a Tenant or ApiToken (apps.py), so a tenant disabled or a
    token revoked from any door (admin, API, shell) stops working everywhere, not only through a service."""
    token_cache.invalidate("all")


def _load(prefix: str) -> ResolvedToken | None:
    row = ApiToken.objects.select_related("tenant").filter(prefix=prefix).first()
    if row is None:
        return None
    tenant = row.tenant
    return ResolvedToken(
        id=row.pk,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        role=row.role,
        tenant=Tenant(pk=tenant.pk, name=tenant.name, slug=tenant.slug, is_active=tenant.is_active),
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        last_used_at=row.last_used_at,
    )


def token_resolve(*, raw: str) -> ResolvedToken:
    """The token behind a bearer value, or TokenRejected saying why."""
    parts = tokens.parse(raw.strip())
    if parts is None:
        raise TokenRejected("Malformed API token.")
    cache = token_cache.get("all")
    if parts.prefix in cache:
        resolved = cache[parts.prefix]
    else:
        resolved = _load(parts.prefix)
        if len(cache) >= MAX_CACHED_TOKENS:  # unknown prefixes are cached too; keep the map bounded
            cache.clear()
        cache[parts.prefix] = resolved
    if resolved is None or not tokens.secret_matches(parts.secret, resolved.secret_hash):
        raise TokenRejected("Invalid API token.")
    if resolved.revoked:
        raise TokenRejected("This API token has been revoked.")
    now = timezone.now()
    if resolved.expires_at is not None and resolved.expires_at <= now:
        raise TokenRejected("This API token has expired.")
    if not resolved.tenant.is_active:
        raise TokenRejected("This tenant is disabled.", status=403, code="tenant_disabled")
    if resolved.last_used_at is None or now - resolved.last_used_at >= LAST_USED_WRITE_INTERVAL:
        # Usage time is operational data, written at most once a minute per token and process.
        resolved.last_used_at = now
        ApiToken.objects.filter(pk=resolved.id).update(last_used_at=now)
    return resolved


def _active_tenant_id(slug) -> int | None:
    return Tenant.objects.filter(slug=slug, is_active=True).values_list("pk", flat=True).first()


# Settings name tenants by slug (e.g. whose policies govern anonymous traffic): resolved once per process,
# refreshed whenever any tenant is saved or deleted.
tenant_ids_by_slug: CompiledSnapshot[int | None] = CompiledSnapshot("tenancy.slugs", _active_tenant_id)


def active_tenant_id(*, slug: str) -> int | None:
    """The id of the active tenant with this slug, or None; no query once warm."""
    return tenant_ids_by_slug.get(slug)


def tenant_slug_invalidate(*, instance: Tenant, **_signal_kwargs) -> None:
    tenant_ids_by_slug.invalidate(instance.slug)
