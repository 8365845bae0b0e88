"""A second process for the snapshot-follow test: `python -m tests.core.follow_worker <tenant id> <seconds>`.

It compiles the same snapshot as the test (a tenant's memberships) and prints, as one JSON line each, the
value it serves at start and every time that value changes, with the wall time it saw the change.
"""
from __future__ import annotations

import json
import os
import sys
import time


def main(tenant_id: int, seconds: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["BULWARK_TEST_DB_NAME"]
    import django

    django.setup()
    from apps.core.snapshot import CompiledSnapshot
    from tests.core.test_snapshot_follow import SNAPSHOT_NAME, memberships_of

    snapshot = CompiledSnapshot(SNAPSHOT_NAME, memberships_of)
    last = snapshot.get(tenant_id)
    print(json.dumps({"value": last, "at": time.time()}), flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = snapshot.get(tenant_id)
        if value != last:
            print(json.dumps({"value": value, "at": time.time()}), flush=True)
            last = value
        time.sleep(0.02)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
