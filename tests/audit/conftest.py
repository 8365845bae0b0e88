"""Helpers of the audit tests."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection


@contextmanager
def _triggers_off():
    """Let raw SQL tamper with the trail, as an attacker with database access could (PostgreSQL: superuser)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    try:
        yield
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def tamper(db):
    """tamper(sql, params): run raw SQL on the audit table with the append-only trigger bypassed."""

    def run(sql: str, params=()) -> None:
        with _triggers_off(), connection.cursor() as cursor:
            cursor.execute(sql, params)

    return run
