"""Seed a demo: tenants acme and globex with users of each role, then every app's own demo data. Idempotent."""
from __future__ import annotations

import importlib

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core import context
from apps.core.context import Actor, RequestContext
from apps.tenancy.models import Membership, Tenant
from apps.tenancy.roles import Role

DEMO_USERS = [
    # (tenant slug, username, password, role)
    ("acme", "acme-admin", "acme-admin-demo", Role.ADMIN),
    ("acme", "acme-operator", "acme-operator-demo", Role.OPERATOR),
    ("acme", "acme-viewer", "acme-viewer-demo", Role.VIEWER),
    ("globex", "globex-admin", "globex-admin-demo", Role.ADMIN),
]
SUPERUSER = ("bulwark", "bulwark-superuser-demo")


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenants, users and each app's demo configuration."

    def handle(self, *args, **options) -> None:
        with context.bind(RequestContext(actor=Actor.system("seed_demo"))), transaction.atomic():
            tenants = {
                "acme": Tenant.objects.get_or_create(slug="acme", defaults={"name": "Acme Corp"})[0],
                "globex": Tenant.objects.get_or_create(slug="globex", defaults={"name": "Globex"})[0],
            }
            User = get_user_model()
            for slug, username, password, role in DEMO_USERS:
                user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
                user.set_password(password)
                user.save()
                membership, created = Membership.objects.get_or_create(
                    tenant=tenants[slug], user=user, defaults={"role": role}
                )
                if not created and membership.role != role:
                    membership.role = role
                    membership.save()
            superuser, _ = User.objects.get_or_create(username=SUPERUSER[0], defaults={"email": "root@example.com"})
            superuser.is_superuser = superuser.is_staff = True
            superuser.set_password(SUPERUSER[1])
            superuser.save()
            for config in apps.get_app_configs():
                if not config.name.startswith("apps."):
                    continue
                try:
                    demo = importlib.import_module(f"{config.name}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{config.name}.demo":
                        raise
                    continue
                for tenant in tenants.values():
                    demo.seed(tenant=tenant, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (username / password):"))
        for slug, username, password, role in DEMO_USERS:
            self.stdout.write(f"  {username:<16} {password:<22} {role} of {slug}")
        self.stdout.write(f"  {SUPERUSER[0]:<16} {SUPERUSER[1]:<22} platform superuser")
