"""Several processes writing one tenant's chain at once must not fork it (PostgreSQL, real processes)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_verify

WRITERS = 4
EVENTS_PER_WRITER = 20


def _test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database several processes share")
def test_concurrent_writers_in_several_processes_do_not_fork_the_chain(tenant_a, tmp_path):
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    env.pop("BULWARK_REQUIRE_SERVICES", None)
    command = [sys.executable, "-m", "tests.audit.chain_writer", tenant_a.slug, str(EVENTS_PER_WRITER), str(tmp_path)]
    writers = [subprocess.Popen(command, cwd=settings.BASE_DIR, env=env) for _ in range(WRITERS)]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < WRITERS:
            assert time.monotonic() < deadline, "writers did not start"
            assert all(w.poll() is None for w in writers), "a writer died before starting"
            time.sleep(0.05)
        Path(tmp_path, "go").touch()
        for writer in writers:
            assert writer.wait(timeout=90) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=10)

    events = list(AuditEvent.objects.filter(tenant=tenant_a).order_by("id"))
    writes = [e for e in events if e.action == "concurrency.write"]
    assert len(writes) == WRITERS * EVENTS_PER_WRITER
    # A fork would show as two events claiming the same predecessor.
    prev_hashes = [e.prev_hash for e in events]
    assert len(set(prev_hashes)) == len(prev_hashes)
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
    assert chain_verify(tenant_id=tenant_a.pk).ok
    # The writers really overlapped: their events interleave in the chain.
    pids = [e.changes["pid"] for e in writes]
    assert sum(a != b for a, b in zip(pids, pids[1:], strict=False)) >= WRITERS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database several processes share")
def test_audit_verify_exits_non_zero_naming_the_forged_event(tenant_a):
    from apps.audit.services import record

    events = [record(action="step", tenant=tenant_a, changes={"i": i}) for i in range(3)]
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    env.pop("BULWARK_REQUIRE_SERVICES", None)
    command = [sys.executable, "manage.py", "audit_verify", "--tenant", tenant_a.slug]
    intact = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0, intact.stderr
    with connection.cursor() as cursor:  # an attacker with superuser rights: triggers off for this session
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("UPDATE bulwark_audit_auditevent SET object_repr = 'forged' WHERE id = %s", [events[1].pk])
        finally:
            cursor.execute("SET session_replication_role = origin")
    broken = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert f"BROKEN at event {events[1].pk}: content does not match its hash" in broken.stderr
