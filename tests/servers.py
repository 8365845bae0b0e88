"""The project's real server processes for tests: uvicorn on the test database (PostgreSQL) and Redis."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from benchmarks.ratelimit_harness import servers


@contextmanager
def project_servers(ports: list[int], redis_url: str, **extra_env: str) -> Iterator[list[str]]:
    """One uvicorn process per port sharing the test's (committed) database; yields their base URLs and
    stops them whatever happens. Use from a fixture that asks for `transactional_db`."""
    if connection.vendor != "postgresql":
        pytest.skip("server processes share the test database only on PostgreSQL")
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    with servers(list(ports), [env] * len(ports)) as bases:
        yield bases
