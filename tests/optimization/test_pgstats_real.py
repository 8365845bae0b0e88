"""pgstats against a real PostgreSQL 15 with pg_stat_statements preloaded, in a throwaway cluster of its own
(initdb into a temporary directory, a free port, `shared_preload_libraries=pg_stat_statements`): the shared
server the other tests use does not preload it. Two databases share the cluster's one pg_stat_statements view,
so a figure read for one must leave the other's statements out."""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connections

from apps.optimization import pgstats

PG_BIN = Path(os.environ.get("BULWARK_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRE_SERVICES = os.environ.get("BULWARK_REQUIRE_SERVICES") == "1"
ROWS = 12_000
TABLE = "opt_order"
# Two databases with the extension, one without it (all in the throwaway cluster).
BENCH, OTHER, BARE = "pgstats_bench", "pgstats_other", "pgstats_bare"

LOOKUP = f'SELECT "{TABLE}"."id" FROM "{TABLE}" WHERE "{TABLE}"."reference" = %s LIMIT 21'


def _in_list(n: int) -> str:
    return f'SELECT "{TABLE}"."id", "{TABLE}"."amount" FROM "{TABLE}" WHERE "{TABLE}"."id" IN ({", ".join(["%s"] * n)})'


pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """initdb + pg_ctl as an unprivileged user (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bulwark-pgstats-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c shared_preload_libraries=pg_stat_statements -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _add_alias(alias: str, name: str, port: int) -> None:
    connections.settings[alias] = {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": "postgres",
                                   "HOST": "127.0.0.1", "PORT": port}
    connections.configure_settings(connections.settings)


def _drop_alias(alias: str) -> None:
    with contextlib.suppress(Exception):
        connections[alias].close()
    with contextlib.suppress(AttributeError):
        del connections[alias]
    connections.settings.pop(alias, None)


def _execute(alias: str, sql: str, params: list | None = None) -> list:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def cluster(django_db_blocker):
    if not (PG_BIN / "initdb").exists() or (os.geteuid() == 0 and not shutil.which("runuser")):
        if REQUIRE_SERVICES:
            pytest.fail(f"BULWARK_REQUIRE_SERVICES=1 but no PostgreSQL binaries in {PG_BIN}")
        pytest.skip(f"needs PostgreSQL's initdb/pg_ctl in {PG_BIN} (set BULWARK_PG_BIN)")
    server = Cluster()
    aliases = ("pgstats_admin", BENCH, OTHER, BARE)
    try:
        server.start()
        with django_db_blocker.unblock():
            _add_alias("pgstats_admin", "postgres", server.port)
            for name in (BENCH, OTHER, BARE):
                _execute("pgstats_admin", f'CREATE DATABASE "{name}"')
                _add_alias(name, name, server.port)
                if name != BARE:
                    _execute(name, "CREATE EXTENSION pg_stat_statements")
                _execute(name, f'CREATE TABLE "{TABLE}" (id bigserial PRIMARY KEY, reference varchar(32) NOT NULL, '
                               "amount integer NOT NULL)")
                _execute(name, f'INSERT INTO "{TABLE}" (reference, amount) SELECT \'R\' || lpad(g::text, 8, \'0\'), '
                               f"(g * 7919) % 100000 FROM generate_series(1, {ROWS}) g")
                _execute(name, f'CREATE INDEX "{TABLE}_amount_idx" ON "{TABLE}" (amount)')
                _execute(name, f'ANALYZE "{TABLE}"')
            yield server
    finally:
        with django_db_blocker.unblock():
            for alias in aliases:
                _drop_alias(alias)
        server.stop()


@pytest.fixture
def pg(cluster, django_db_blocker):
    """The cluster with pg_stat_statements emptied (it is one view for every database of the cluster)."""
    with django_db_blocker.unblock():
        _execute(BENCH, "SELECT pg_stat_statements_reset()")
        yield cluster


def _wait_for(read, *, timeout_s: float = 5.0):
    """Cumulative table statistics reach the shared view when a backend flushes them (at most once a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_the_cluster_really_preloads_pg_stat_statements(pg):
    [(libraries,)] = _execute(BENCH, "SHOW shared_preload_libraries")
    assert "pg_stat_statements" in libraries
    assert pgstats.statement_stats("SELECT 1", TABLE, using=BENCH) == {}  # readable, nothing matched


def test_only_this_databases_statements_are_counted(pg):
    for i in range(4):
        _execute(BENCH, LOOKUP, [f"R{i:08d}"])
    for i in range(7):  # the same statement in another database of the same server
        _execute(OTHER, LOOKUP, [f"R{i:08d}"])
    bench = pgstats.statement_stats(LOOKUP, TABLE, using=BENCH)
    other = pgstats.statement_stats(LOOKUP, TABLE, using=OTHER)
    assert (bench["calls"], bench["entries"], bench["rows"]) == (4, 1, 3)  # R00000000 does not exist
    assert (other["calls"], other["entries"], other["rows"]) == (7, 1, 6)
    assert bench["mean_ms"] >= 0


def test_in_list_entries_folded_into_one_fingerprint_are_summed(pg):
    """PostgreSQL 15 keeps one entry per IN-list length; our fingerprint is one statement for all of them."""
    for n in (2, 3, 3, 5):
        _execute(BENCH, _in_list(n), list(range(1, n + 1)))
    entries = _execute(BENCH, "SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s", [f"%{TABLE}%IN (%"])
    assert entries == [(3,)]  # what a first match alone would have read: 1 or 2 of the 4 calls
    stats = pgstats.statement_stats(_in_list(4), TABLE, using=BENCH)
    assert stats["calls"] == 4
    assert stats["entries"] == 3
    assert stats["rows"] == 2 + 3 + 3 + 5
    [(total_ms,)] = _execute(BENCH, "SELECT sum(total_exec_time) FROM pg_stat_statements WHERE query LIKE %s",
                             [f"%{TABLE}%IN (%"])
    assert stats["mean_ms"] == pytest.approx(total_ms / 4, abs=0.001)


def test_table_column_and_index_statistics_are_read_through_the_alias(pg):
    for i in range(3):
        _execute(BENCH, LOOKUP, [f"R{i:08d}"])
    _execute(BENCH, "SELECT pg_stat_force_next_flush()")
    _execute(BENCH, "SELECT 1")
    tables = _wait_for(lambda: (s := pgstats.table_stats(TABLE, using=BENCH)) and s["seq_scan"] >= 3 and s)
    assert tables["n_live_tup"] >= ROWS  # an estimate (ANALYZE's, plus insert counts flushed after it)
    assert set(tables) == {"seq_scan", "seq_tup_read", "idx_scan", "n_live_tup"}
    assert pgstats.column_stats(TABLE, "reference", using=BENCH)["n_distinct"] == -1  # unique: all distinct
    assert pgstats.leading_index(TABLE, "amount", using=BENCH) == f"{TABLE}_amount_idx"
    assert pgstats.leading_index(TABLE, "reference", using=BENCH) is None
    # The default database (the tests' own) has no such table: the alias is what was read.
    assert pgstats.table_stats(TABLE) is None


def test_evidence_of_a_plan_finding_carries_the_summed_statement(pg):
    for n in (2, 3, 4):
        _execute(BENCH, _in_list(n), list(range(1, n + 1)))
    found = pgstats.evidence(sql=_in_list(2), table=TABLE, column="id", using=BENCH)
    assert found["sources"] == {"explain": True, "pg_stat_user_tables": True, "pg_stats": True,
                                "pg_stat_statements": True}
    assert (found["statement_stats"]["calls"], found["statement_stats"]["entries"]) == (3, 3)
    assert found["column_stats"]["n_distinct"] == -1


def test_a_database_without_the_extension_says_so(pg):
    _execute(BARE, LOOKUP, ["R00000001"])
    assert pgstats.statement_stats(LOOKUP, TABLE, using=BARE) is None
    found = pgstats.evidence(sql=LOOKUP, table=TABLE, column="reference", using=BARE)
    assert found["sources"]["pg_stat_statements"] is False
    assert "statement_stats" not in found
    assert found["sources"]["pg_stat_user_tables"] is True
    # The connection is usable after the refused read (it ran in a savepoint).
    assert _execute(BARE, "SELECT 1") == [(1,)]
