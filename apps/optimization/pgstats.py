"""PostgreSQL's own statistics as extra evidence for plan findings, read only when the server offers them.

`pg_stat_user_tables` (sequential vs index scans, live rows: a table scanned sequentially again and again is
the hot case), `pg_stats` (n_distinct / correlation of the filtered column: how selective an index would be),
`pg_index` (the column already leads an index: the finding is not a missing index) and `pg_stat_statements`
when the extension is installed and loaded (calls and mean time of the statement across all traffic, not only
the sampled requests). Every read runs in a savepoint and answers None when its source is absent (SQLite, a
view not readable, the extension not installed or not preloaded): the analysis never fails for them.

Each function reads through the database alias `using` (default: `default`). `pg_stat_statements` is one view
for the whole server: only the entries of that alias's database count (its `dbid`), and the entries its own
normalisation keeps apart but our fingerprint folds (an `IN` list of 2, 3, 4 ... items is one entry per
length up to PostgreSQL 17) are summed, their number kept as `entries`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from apps.optimization.fingerprint import normalise

_PLACEHOLDER = re.compile(r"\$\d+")


def _read(query: Callable[[Any], Any], using: str = DEFAULT_DB_ALIAS) -> Any:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            return query(cursor)
    except Exception:  # the source is absent or unreadable: it is evidence, not a requirement
        return None


def table_stats(table: str, *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    def query(cursor):
        cursor.execute("SELECT seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_live_tup FROM pg_stat_user_tables "
                       "WHERE schemaname = current_schema() AND relname = %s", [table])
        row = cursor.fetchone()
        return row and dict(zip(("seq_scan", "seq_tup_read", "idx_scan", "n_live_tup"), map(int, row), strict=True))

    return _read(query, using)


def column_stats(table: str, column: str, *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    def query(cursor):
        cursor.execute("SELECT n_distinct, correlation, null_frac FROM pg_stats WHERE schemaname = current_schema() "
                       "AND tablename = %s AND attname = %s", [table, column])
        row = cursor.fetchone()
        return row and {"n_distinct": row[0], "correlation": None if row[1] is None else round(row[1], 3),
                        "null_frac": row[2]}

    return _read(query, using)


def leading_index(table: str, column: str, *, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The name of a valid index whose first column is `column`, if there is one."""
    def query(cursor):
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = "
            "x.indexrelid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
            "WHERE t.relname = %s AND a.attname = %s AND x.indisvalid AND t.relnamespace = "
            "current_schema()::regnamespace LIMIT 1", [table, column])
        row = cursor.fetchone()
        return row[0] if row else None

    return _read(query, using)


def same_statement(tracked: str, sql: str) -> bool:
    """pg_stat_statements' text (constants as `$n`) and Django's (`%s`) are the same statement."""
    return normalise(_PLACEHOLDER.sub("%s", tracked)) == normalise(sql)


def statement_stats(sql: str, table: str, *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    """The statement's figures in pg_stat_statements for this database: calls, mean time and rows summed over
    every entry our fingerprint matches (`entries` of them). None when the view cannot be read, {} when the
    statement has no entry."""
    def query(cursor):
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT query, calls, total_exec_time, rows FROM pg_stat_statements WHERE dbid = "
                       "(SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE %s "
                       "ORDER BY total_exec_time DESC LIMIT 500", [f"%{table}%"])
        matched = [row for row in cursor.fetchall() if same_statement(row[0], sql)]
        calls = sum(int(row[1]) for row in matched)
        if not calls:
            return {}
        total_ms = sum(float(row[2]) for row in matched)
        return {"calls": calls, "mean_ms": round(total_ms / calls, 3), "rows": sum(int(row[3]) for row in matched),
                "entries": len(matched)}

    return _read(query, using)


def evidence(*, sql: str, table: str, column: str | None, using: str = DEFAULT_DB_ALIAS) -> dict:
    """What each source says about a plan finding, and which sources were available."""
    tables = table_stats(table, using=using)
    columns = column_stats(table, column, using=using) if column else None
    statements = statement_stats(sql, table, using=using)
    found = {"sources": {"explain": True, "pg_stat_user_tables": tables is not None,
                         "pg_stats": columns is not None, "pg_stat_statements": statements is not None}}
    if tables:
        found["table_stats"] = tables
    if columns:
        found["column_stats"] = columns
    if statements:
        found["statement_stats"] = statements
    return found


def hot_sequential(stats: dict | None, *, large_rows: int) -> bool:
    """A large table read mostly by sequential scans (the finding is then critical)."""
    return bool(stats) and stats["n_live_tup"] >= large_rows and stats["seq_scan"] >= 10 and \
        stats["seq_scan"] > stats["idx_scan"]
