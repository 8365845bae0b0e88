"""PostgreSQL's statistics views as extra evidence for plan findings: read when offered, skipped when not."""
from __future__ import annotations

import pytest
from django.db import connection, transaction

from apps.optimization import pgstats
from benchmarks.optimization_demo.urls import PLANTED

pytestmark = [pytest.mark.django_db, pytest.mark.urls("benchmarks.optimization_demo.urls")]
ORDERS = "optimization_demo_order"


def _finding(found, kind):
    return next(c for c in found if c.kind == kind)


def test_plan_findings_carry_table_and_column_statistics(drive, analyze):
    drive(PLANTED["missing_index"])
    drive(PLANTED["unindexed_sort"])
    found = analyze()
    missing, sort = _finding(found, "missing_index"), _finding(found, "unindexed_sort")
    for finding in (missing, sort):
        sources = finding.evidence["sources"]
        assert sources["explain"] and sources["pg_stat_user_tables"] and sources["pg_stats"]
        assert finding.evidence["table_stats"]["n_live_tup"] >= 10_000
        assert set(finding.evidence["table_stats"]) == {"seq_scan", "seq_tup_read", "idx_scan", "n_live_tup"}
    assert missing.evidence["column_stats"]["n_distinct"] != 0  # of `reference`, the filtered column
    assert -1 <= sort.evidence["column_stats"]["correlation"] <= 1  # of `amount`, the sort column
    # Whether pg_stat_statements could be read (installed and preloaded) is said in the evidence.
    assert missing.evidence["sources"]["pg_stat_statements"] is (pgstats.statement_stats("SELECT 1", ORDERS) is not None)


def test_an_already_indexed_column_suppresses_the_finding(drive, analyze):
    """Planner off its indexes (as with stale statistics): the scan is sequential, but the index exists."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "t_order_reference" ON "{ORDERS}" ("reference")')
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    drive(PLANTED["missing_index"])
    found = analyze()
    assert "missing_index" not in {c.kind for c in found}, [c.line() for c in found]
    assert pgstats.leading_index(ORDERS, "reference") == "t_order_reference"
    assert pgstats.leading_index(ORDERS, "amount") is None


def test_hot_sequential_scans_make_the_finding_critical():
    large = {"seq_scan": 500, "seq_tup_read": 10**7, "idx_scan": 3, "n_live_tup": 30_000}
    assert pgstats.hot_sequential(large, large_rows=10_000)
    assert not pgstats.hot_sequential({**large, "idx_scan": 10_000}, large_rows=10_000)
    assert not pgstats.hot_sequential({**large, "n_live_tup": 500}, large_rows=10_000)
    assert not pgstats.hot_sequential(None, large_rows=10_000)


def test_absent_sources_are_skipped_without_breaking_the_transaction(drive, analyze):
    assert pgstats._read(lambda cursor: cursor.execute("SELECT * FROM pg_stat_nothing_here")) is None
    try:  # installed but (usually) not preloaded: its view then refuses to be read
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    except Exception:
        pass
    drive(PLANTED["missing_index"])
    finding = _finding(analyze(), "missing_index")  # the analysis goes on
    readable = pgstats.statement_stats("SELECT 1", ORDERS) is not None
    assert finding.evidence["sources"]["pg_stat_statements"] is readable
    assert pgstats.table_stats("no_such_table") is None
    assert pgstats.column_stats(ORDERS, "no_such_column") is None


def test_a_pg_stat_statements_entry_matches_the_sampled_statement():
    sql = f'SELECT "id" FROM "{ORDERS}" WHERE "reference" = %s AND "id" IN (%s, %s) LIMIT 21'
    assert pgstats.same_statement(f'SELECT "id" FROM "{ORDERS}" WHERE "reference" = $1 AND "id" IN ($2, $3, $4) '
                                  "LIMIT $5", sql)
    assert not pgstats.same_statement(f'SELECT "id" FROM "{ORDERS}" WHERE "code" = $1 LIMIT $2', sql)
