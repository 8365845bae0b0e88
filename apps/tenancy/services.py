"""Every write of tenancy: tenants, memberships and tokens."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.core.services import model_update
from apps.tenancy import tokens
from apps.tenancy.models import ApiToken, Membership, Tenant
from apps.tenancy.roles import Role, role_at_least


@transaction.atomic
def tenant_create(*, name: str, slug: str, is_active: bool = True) -> Tenant:
    tenant = Tenant(name=name, slug=slug, is_active=is_active)
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: Mapping[str, Any]) -> Tenant:
    return model_update(instance=tenant, data=data)


ALREADY_MEMBER = "This user is already a member of the tenant."


@transaction.atomic
def membership_create(
    *, tenant: Tenant, username: str, role: str, password: str | None = None, email: str = ""
) -> Membership:
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        if not password:
            raise ValidationError({"username": ["No such user. Give a password to create the account."]})
        user = User(username=username, email=email)
        try:
            validate_password(password, user)
        except ValidationError as exc:  # the validators name no field; the caller should see which one
            raise ValidationError({"password": exc.messages}) from None
        user.set_password(password)
        user.full_clean()
        user.save()
    membership_check_new(tenant=tenant, user=user)
    membership = Membership(tenant=tenant, user=user, role=role)
    membership.full_clean()
    try:
        with transaction.atomic():  # a concurrent twin passes the checks above; the constraint stops it
            membership.save()
    except IntegrityError:
        raise ValidationError({"username": [ALREADY_MEMBER]}) from None
    return membership


def membership_check_new(*, tenant: Tenant, user) -> None:
    """Refuse a second membership of one user in one tenant with a field error (the admin form calls it too)."""
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError({"username": [ALREADY_MEMBER]})


def membership_check_admins_remain(*, memberships: Iterable[Membership]) -> None:
    """Refuse when these memberships losing their admin role (demoted or deleted) leaves a tenant without one."""
    leaving: dict[int, set[int]] = defaultdict(set)
    for membership in memberships:
        if membership.role == Role.ADMIN:
            leaving[membership.tenant_id].add(membership.pk)
    for tenant_id, pks in leaving.items():
        if not Membership.objects.filter(tenant_id=tenant_id, role=Role.ADMIN).exclude(pk__in=pks).exists():
            raise ConflictError("A tenant must keep at least one admin.", code="last_admin")


def _lock_tenants(tenant_ids: Iterable[int]) -> None:
    # One writer of a tenant's memberships at a time, so two admins demoting each other at once cannot
    # both see the other as the remaining admin.
    list(Tenant.objects.select_for_update().filter(pk__in=set(tenant_ids)).order_by("pk").values_list("pk"))


@transaction.atomic
def membership_update(*, membership: Membership, role: str) -> Membership:
    _lock_tenants([membership.tenant_id])
    if role != Role.ADMIN:
        membership_check_admins_remain(memberships=[Membership.objects.get(pk=membership.pk)])
    return model_update(instance=membership, data={"role": role})


@transaction.atomic
def memberships_delete(*, memberships: Iterable[Membership]) -> int:
    """Delete memberships (one or a selection), each recorded in the audit trail; never the last admin."""
    pks = [membership.pk for membership in memberships]
    current = list(Membership.objects.filter(pk__in=pks))
    _lock_tenants(m.tenant_id for m in current)
    current = list(Membership.objects.filter(pk__in=pks))
    membership_check_admins_remain(memberships=current)
    for membership in current:
        membership.delete()
    return len(current)


def membership_delete(*, membership: Membership) -> None:
    memberships_delete(memberships=[membership])


def token_check_new(*, role: str, creator_role: str | None, expires_at: datetime | None) -> None:
    """Field errors of a new token (the admin's form calls it too)."""
    if creator_role is not None and not role_at_least(creator_role, role):
        raise ValidationError({"role": [f"A {creator_role} cannot create a token with the {role} role."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["Must be in the future."]})


@transaction.atomic
def token_create(
    *,
    tenant: Tenant,
    name: str,
    role: str = Role.VIEWER,
    created_by=None,
    creator_role: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Returns the token row and its plaintext, which is never retrievable again."""
    token_check_new(role=role, creator_role=creator_role, expires_at=expires_at)
    plaintext, parts = tokens.generate()
    token = ApiToken(
        tenant=tenant,
        name=name,
        role=role,
        created_by=created_by if getattr(created_by, "pk", None) else None,
        expires_at=expires_at,
    )
    token.prefix = parts.prefix
    token.secret_hash = tokens.hash_secret(parts.secret)
    token.full_clean()
    token.save()
    return token, plaintext


@transaction.atomic
def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is not None:
        raise ApplicationError("This token is already revoked.", code="already_revoked", status=409)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return token
