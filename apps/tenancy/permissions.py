"""Role permissions: viewers read, operators act, admins configure. Views say which role each action needs."""
from __future__ import annotations

from rest_framework import exceptions, permissions

from apps.tenancy.roles import Role, role_at_least


def required_role(request, view) -> str:
    action_roles = getattr(view, "action_roles", {}) or {}
    action = getattr(view, "action", None)
    if action in action_roles:
        return action_roles[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", Role.VIEWER)
    return getattr(view, "write_role", Role.ADMIN)


class TenantRolePermission(permissions.BasePermission):
    """Needs an authenticated principal with an active tenant and at least the action's role."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if getattr(request, "tenant", None) is None:
            raise exceptions.PermissionDenied("No active tenant: you are not a member of any active tenant.")
        needed = required_role(request, view)
        if not role_at_least(getattr(request, "role", None), needed):
            raise exceptions.PermissionDenied(f"This action needs the {needed} role; you have {request.role}.")
        return True


class IsSuperuser(permissions.BasePermission):
    message = "Only platform superusers may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


class IsAuthenticatedPrincipal(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)
