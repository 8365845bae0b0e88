"""A contender of the jobs race tests, run as a separate process: wait for the start time, then act once.

    python -m tests.jobs.race <start_epoch_s> claim <run_pk>
    python -m tests.jobs.race <start_epoch_s> submit <tenant_pk> <idempotency_key>
"""
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.jobs.qcluster_settings")
django.setup()

from apps.jobs import services  # noqa: E402
from apps.tenancy.models import Tenant  # noqa: E402


def main(start_epoch_s: str, action: str, *args: str) -> None:
    tenant = Tenant.objects.get(pk=args[0]) if action == "submit" else None
    time.sleep(max(0.0, float(start_epoch_s) - time.time()))
    if action == "claim":
        run = services.run_claim(run_pk=int(args[0]), worker=f"race:{os.getpid()}")
        print("claimed" if run else "refused")
    else:
        run = services.job_submit(job_type="test.noop", params={}, tenant=tenant, idempotency_key=args[1])
        print(run.pk)


if __name__ == "__main__":
    main(*sys.argv[1:])
