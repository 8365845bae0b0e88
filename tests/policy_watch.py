"""A second real process watching one app's compiled policies: `python -m tests.policy_watch <app> <tenant> <s>`.

It serves the app's policy snapshot the way requests do and prints, as one JSON line each, what it serves for
the tenant at start and every time that changes, with the wall time it saw the change. `PolicyWatcher` runs
it from a test and offers the doors a policy is changed through (ORM, the admin's bulk action, the shell).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


def _served(app: str, tenant_id: int) -> dict:
    """{policy name: the field the test changes} as the app's hot path would apply it now."""
    if app == "ratelimit":
        from apps.ratelimit.snapshot import policies_for_tenant

        return {name: p.limit.capacity for name, p in policies_for_tenant(tenant_id).by_name.items()}
    if app == "caching":
        from apps.caching.snapshot import policy_snapshot

        return {name: p.ttl_s for name, p in policy_snapshot.get(tenant_id).by_name.items()}
    from apps.resilience.runtime import registry
    from apps.resilience.snapshot import policy_snapshot

    policies = policy_snapshot.get(tenant_id)
    served = {f"retry:{name}": r.max_attempts for name, r in policies.retries.items()}
    for name in policies.breakers:  # through the registry, as a guarded call finds its breaker
        served[f"breaker:{name}"] = registry.get(name, tenant_id).config.forced_state
    return served


def main(app: str, tenant_id: int, seconds: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["BULWARK_TEST_DB_NAME"]
    import django

    django.setup()
    from django.db import connection

    last = _served(app, tenant_id)
    print(json.dumps({"value": last, "at": time.time()}), flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = _served(app, tenant_id)
        if value != last:
            print(json.dumps({"value": value, "at": time.time()}), flush=True)
            last = value
        connection.close()  # never hold a transaction open across polls
        time.sleep(0.02)


class PolicyWatcher:
    """The watching process, and the doors through which a test changes a policy."""

    def __init__(self, app: str, tenant_id: int, db_name: str) -> None:
        self.db_name = db_name
        self.env = {**os.environ, "BULWARK_TEST_DB_NAME": db_name}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.policy_watch", app, str(tenant_id), "60"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def next_seen(self) -> dict:
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read() if self.process.poll() is not None else "watcher stopped printing"
        return json.loads(line)

    def seen_within(self, changed_at: float, seconds: float = 2.0) -> dict:
        """The next value the watcher serves, asserting it arrived within `seconds` of the change."""
        seen = self.next_seen()
        assert seen["at"] - changed_at < seconds, f"reached the second process after {seen['at'] - changed_at:.2f} s"
        return seen["value"]

    def shell(self, code: str) -> float:
        """Run `manage.py shell -c code` on the test database; returns the wall time it finished."""
        url = urlsplit(os.environ["DATABASE_URL"])
        env = {**self.env, "DATABASE_URL": urlunsplit(url._replace(path="/" + self.db_name))}
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return time.time()

    def stop(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=10)


def assert_every_door_reaches(
    watcher: PolicyWatcher, *, admin, changelist: str, served_key: Callable[[object], str],
    served_value: Callable[[object], object], orm, bulk, shell, field: str, new_value: object,
    bulk_change: tuple[str, object] | None = None,
) -> None:
    """Change and delete one policy through each door (ORM, the admin's bulk actions, the shell): after each,
    the watching process serves the new state within 2 s. `admin` is a signed-in test client; `bulk_change`
    is (admin action, the value it serves after) when the admin has a bulk action that changes a policy."""
    model = type(orm)
    expected = watcher.next_seen()["value"]
    assert expected == {served_key(p): served_value(p) for p in (orm, bulk, shell)}

    setattr(orm, field, new_value)
    orm.save()  # autocommit: the ORM door
    expected[served_key(orm)] = served_value(orm)
    assert watcher.seen_within(time.time()) == expected
    orm.delete()
    del expected[served_key(orm)]
    assert watcher.seen_within(time.time()) == expected

    if bulk_change is not None:
        action, served_after = bulk_change
        response = admin.post(changelist, {"action": action, "_selected_action": [bulk.pk]})
        assert response.status_code == 302
        expected[served_key(bulk)] = served_after
        assert watcher.seen_within(time.time()) == expected
    response = admin.post(changelist, {"action": "delete_selected", "post": "yes", "_selected_action": [bulk.pk]})
    assert response.status_code == 302 and not model._base_manager.filter(pk=bulk.pk).exists()
    del expected[served_key(bulk)]
    assert watcher.seen_within(time.time()) == expected

    load = f"from {model.__module__} import {model.__name__} as M; p = M.objects.get(pk={shell.pk})"
    changed_at = watcher.shell(f"{load}; p.{field} = {new_value!r}; p.save()")
    setattr(shell, field, new_value)
    expected[served_key(shell)] = served_value(shell)
    assert watcher.seen_within(changed_at) == expected
    changed_at = watcher.shell(f"{load}; p.delete()")
    del expected[served_key(shell)]
    assert watcher.seen_within(changed_at) == expected


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
