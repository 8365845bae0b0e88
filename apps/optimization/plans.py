"""PostgreSQL plans of slow statements: which index would serve them, or why no B-tree can.

`EXPLAIN (FORMAT JSON)` (never ANALYZE: the statement is not run again) on the sampled statement with its
sampled parameters. A sequential scan of a large table (`pg_class.reltuples`) that keeps few of its rows is
a missing index; one whose filter is a contains / leading-wildcard / case-insensitive match is an
unindexable search; a sort of a whole large table under a LIMIT is an unindexed sort.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection

_COMPARED = re.compile(r"\(?\(?(\w+)\)?(?:::\w+)? (?:=|<|>|<=|>=|<>) ")
_SEARCH = re.compile(r"(~~\*|!~~\*|~\*|~~ '%|upper\(|lower\()", re.IGNORECASE)
_SEARCH_COLUMN = re.compile(r"(?:upper|lower)?\(*(\w+)\)*(?:::\w+)?\)? (?:~~\*?|~\*?) ", re.IGNORECASE)
_SORT_COLUMN = re.compile(r"^(?:\w+\.)?(\w+)( DESC)?$")


@dataclass
class PlanVerdict:
    kind: str  # missing_index | unindexable_search | unindexed_sort
    table: str
    columns: list[str]
    table_rows: int
    plan_rows: int
    detail: str
    statement: str


def table_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s AND relkind = 'r'", [table])
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0


def explain(sql: str, params: list | None) -> dict | None:
    if connection.vendor != "postgresql" or params is None:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            return cursor.fetchone()[0][0]["Plan"]
    except Exception:
        return None


def _walk(node: dict, parents: tuple = ()):
    yield node, parents
    for child in node.get("Plans", []):
        yield from _walk(child, (*parents, node))


def _index_name(table: str, columns: list[str], suffix: str) -> str:
    return f"{table}_{'_'.join(columns)}_{suffix}"[:63]


def judge(plan: dict, *, large_rows: int) -> PlanVerdict | None:
    for node, parents in _walk(plan):
        if node.get("Node Type") == "Sort":
            keys = node.get("Sort Key", [])
            limited = any(p.get("Node Type") == "Limit" for p in parents)
            scans = [n for n, _ in _walk(node) if n.get("Node Type") == "Seq Scan"]
            if limited and keys and scans and "Filter" not in scans[0]:
                table = scans[0].get("Relation Name", "")
                rows = table_rows(table)
                match = _SORT_COLUMN.match(keys[0].replace('"', ""))
                if rows >= large_rows and match:
                    column, desc = match.group(1), match.group(2) or ""
                    return PlanVerdict(
                        "unindexed_sort", table, [column], rows, int(node.get("Plan Rows", 0)),
                        f"Sort ({', '.join(keys)}) of every row of {table} under a LIMIT",
                        f'CREATE INDEX CONCURRENTLY "{_index_name(table, [column], "sort")}" ON "{table}" '
                        f'("{column}"{desc});')
        if node.get("Node Type") != "Seq Scan" or "Filter" not in node:
            continue
        table = node.get("Relation Name", "")
        rows = table_rows(table)
        if rows < large_rows:
            continue
        condition = node["Filter"]
        plan_rows = int(node.get("Plan Rows", 0))
        if _SEARCH.search(condition):
            columns = list(dict.fromkeys(_SEARCH_COLUMN.findall(condition)))[:1] or ["?"]
            return PlanVerdict(
                "unindexable_search", table, columns, rows, plan_rows, f"Seq Scan on {table}, Filter: {condition}",
                "CREATE EXTENSION IF NOT EXISTS pg_trgm; "
                f'CREATE INDEX CONCURRENTLY "{_index_name(table, columns, "trgm")}" ON "{table}" '
                f'USING gin ("{columns[0]}" gin_trgm_ops);')
        if plan_rows > rows * 0.05:
            continue  # not selective: an index would not be used
        columns = [c for c in dict.fromkeys(_COMPARED.findall(condition)) if c.lower() not in {"and", "or", "not"}]
        if not columns:
            continue
        return PlanVerdict(
            "missing_index", table, columns[:2], rows, plan_rows, f"Seq Scan on {table}, Filter: {condition}",
            f'CREATE INDEX CONCURRENTLY "{_index_name(table, columns[:2], "idx")}" ON "{table}" '
            f'({", ".join(chr(34) + c + chr(34) for c in columns[:2])});')
    return None
