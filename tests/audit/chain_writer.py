"""Child process of the concurrency test: waits for a start signal, then writes audit events for one tenant.

Usage: python -m tests.audit.chain_writer <tenant slug> <events> <barrier dir>
Every event is its own transaction. (No shared row is saved: its row lock would serialise the writers and
hide a chain that is not safe on its own.)
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import transaction

    from apps.audit.services import record
    from apps.tenancy.models import Tenant

    slug, count, barrier = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    tenant = Tenant.objects.get(slug=slug)
    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.01)
    for i in range(count):
        with transaction.atomic():
            record(action="concurrency.write", tenant=tenant, changes={"pid": os.getpid(), "i": i})


if __name__ == "__main__":
    main()
