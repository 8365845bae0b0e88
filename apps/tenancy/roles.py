"""Membership roles, ordered: each role can do what the ones below it can."""
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def role_at_least(role: str | None, required: str) -> bool:
    return role is not None and _RANK.get(role, 0) >= _RANK[required]
