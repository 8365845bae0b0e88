"""Settings of the `manage.py qcluster` subprocesses the jobs tests start: the test database, a chosen broker,
short leases and the test job types."""
import json
import os

from config.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ["BULWARK_TEST_DB_NAME"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobs.testapp"]  # noqa: F405
BULWARK = {**BULWARK, "JOBS": {"LEASE_S": 2, "HEARTBEAT_S": 0.5,  # noqa: F405
                                **json.loads(os.environ.get("BULWARK_TEST_JOBS") or "{}")}}
Q_CLUSTER = {  # noqa: F405
    **Q_CLUSTER,  # noqa: F405
    "workers": int(os.environ.get("BULWARK_TEST_WORKERS", "1")),
    "scheduler": False,
    "guard_cycle": 0.2,
}
if os.environ["BULWARK_TEST_BROKER"] == "orm":
    Q_CLUSTER.pop("redis", None)
    Q_CLUSTER["orm"] = "default"
