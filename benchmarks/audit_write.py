"""Cost of the audit trail on PostgreSQL: an audited save vs the same save with audit off, side by side.

Run:  DATABASE_URL=postgres://... .venv/bin/python benchmarks/audit_write.py
It creates and drops its own database (the test database name plus "_bench"), so it never touches data.
Each round updates one Tenant row N times, each in its own transaction (as a request would), first with
audit on, then with the audit signals of that model disconnected; rounds alternate to share the noise.
It also measures record() alone (a named operation): events/s into one tenant's chain.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models.signals import post_save, pre_save  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

ROUNDS = 5
SAVES_PER_ROUND = 300


def _saves(tenant, label: str) -> float:
    start = time.perf_counter()
    for i in range(SAVES_PER_ROUND):
        with transaction.atomic():
            tenant.name = f"{label} {i}"
            tenant.save()
    return (time.perf_counter() - start) / SAVES_PER_ROUND


def _statements_per_save(tenant) -> int:
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        tenant.name = "counted"
        tenant.save()
    return len([q for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")])


def _records(tenant) -> float:
    from apps.audit.services import record

    start = time.perf_counter()
    for i in range(SAVES_PER_ROUND):
        with transaction.atomic():
            record(action="bench.operation", tenant=tenant, changes={"i": i})
    return (time.perf_counter() - start) / SAVES_PER_ROUND


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: this benchmark measures PostgreSQL.")
    from apps.audit.models import AuditEvent
    from apps.core import audited as registry
    from apps.tenancy.models import Tenant

    settings.DATABASES["default"].setdefault("TEST", {})
    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_{settings.DATABASES['default']['NAME']}_bench"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        tenant = Tenant.objects.create(name="bench", slug="bench")
        _saves(tenant, "warm-up")
        audited_statements = _statements_per_save(tenant)
        audited_s, plain_s, record_s = [], [], []
        for _ in range(ROUNDS):
            audited_s.append(_saves(tenant, "audited"))
            pre_save.disconnect(sender=Tenant, dispatch_uid=f"audit-pre-{Tenant._meta.label}")
            post_save.disconnect(sender=Tenant, dispatch_uid=f"audit-save-{Tenant._meta.label}")
            try:
                plain_s.append(_saves(tenant, "plain"))
            finally:
                pre_save.connect(registry._remember_old, sender=Tenant, weak=False,
                                 dispatch_uid=f"audit-pre-{Tenant._meta.label}")
                post_save.connect(registry._on_save, sender=Tenant, weak=False,
                                  dispatch_uid=f"audit-save-{Tenant._meta.label}")
            record_s.append(_records(tenant))
        audited, plain, rec = (statistics.median(x) for x in (audited_s, plain_s, record_s))
        events = AuditEvent.objects.filter(tenant=tenant).count()
        print(f"PostgreSQL {connection.pg_version}, {ROUNDS} rounds x {SAVES_PER_ROUND} saves, one transaction each; "
              f"{events} events written; medians:")
        print(f"{'case':<36}{'per change ms':>14}{'changes/s':>12}")
        print(f"{'save, audit off (signals cut)':<36}{plain * 1e3:>14.3f}{1 / plain:>12.0f}")
        print(f"{'save, audited':<36}{audited * 1e3:>14.3f}{1 / audited:>12.0f}")
        print(f"{'record() alone (named operation)':<36}{rec * 1e3:>14.3f}{1 / rec:>12.0f}")
        print(f"statements per audited save: {audited_statements} (plain: 1 UPDATE; audit adds the old-row SELECT, "
              f"the chain lock, the chain-head SELECT and the INSERT)")
        print(f"audit overhead per change: {(audited - plain) * 1e3:.3f} ms; "
              f"audited/plain time ratio: {audited / plain:.2f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
