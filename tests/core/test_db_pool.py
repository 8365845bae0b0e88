"""Bounded PostgreSQL connections: Django's psycopg pool per process, and a clean 503 when it is exhausted."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError
from django.http import HttpResponse
from django.urls import path
from psycopg_pool import ConnectionPool, PoolTimeout
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from apps.tenancy.services import token_create
from benchmarks.ratelimit_harness import _wait, port

WORKERS, POOL_MAX = 2, 2
APP_NAME = "bulwark-pool-test"


def _raise_pool_timeout():
    """A real PoolTimeout from a real one-slot pool whose slot is taken, wrapped the way Django wraps it."""
    db = connection.settings_dict
    conninfo = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"
    with ConnectionPool(conninfo, min_size=0, max_size=1, timeout=0.05, open=True) as pool, pool.connection():
        try:
            pool.getconn()
        except PoolTimeout as exc:
            raise OperationalError(str(exc)) from exc


def plain_view(request):
    _raise_pool_timeout()
    return HttpResponse("unreachable")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def api_busy_view(request):
    _raise_pool_timeout()


class BusyInMiddleware:
    """Stands for a middleware (session, tenant) that meets the exhausted pool before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/in-middleware":
            _raise_pool_timeout()
        return self.get_response(request)


urlpatterns = [path("plain", plain_view), path("api/busy", api_busy_view), path("in-middleware", plain_view)]


def _assert_busy(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["code"] == "database_busy" and body["status"] == 503 and body["retry_after_s"] == 1


@pytest.mark.urls("tests.core.test_db_pool")
@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_an_exhausted_pool_is_a_503_with_retry_after_in_views_drf_and_middleware(client, settings, debug):
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's")
    settings.DEBUG = debug
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.core.test_db_pool.BusyInMiddleware"]
    client.raise_request_exception = False
    for url in ("/plain", "/api/busy", "/in-middleware"):
        _assert_busy(client.get(url))


def _connections(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]).fetchone()[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_many_more_clients_than_pool_slots_get_200_or_503_and_connections_stay_bounded(tenant_a, redis_url):
    if connection.vendor != "postgresql":
        pytest.skip("server processes share the test database only on PostgreSQL")
    db = connection.settings_dict
    conninfo = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"
    _, plaintext = token_create(tenant=tenant_a, name="pool", role="viewer")
    web_port = port(51)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url, "DEBUG": "0", "SECRET_KEY": "pool-test-secret-key-0123456789-abcdefghijklmnop",
        "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "CRITICAL",
        "BULWARK_DB_POOL_MAX_SIZE": str(POOL_MAX), "BULWARK_DB_POOL_TIMEOUT_S": "0.3",
        "PGAPPNAME": APP_NAME,  # libpq names the servers' connections, so only theirs are counted
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(web_port),
         "--workers", str(WORKERS)],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _connections(conninfo))
            time.sleep(0.02)

    try:
        _wait(web_port, server)
        watcher = threading.Thread(target=watch)
        watcher.start()
        url = f"http://127.0.0.1:{web_port}/api/v1/resilience/breakers/"
        headers = {"Authorization": f"Bearer {plaintext}"}
        with httpx.Client(timeout=30, headers=headers) as http, ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(lambda _: http.get(url), range(240)))
        stop.set()
        watcher.join()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=20)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    for busy in (r for r in responses if r.status_code == 503):
        assert busy.headers["Retry-After"] == "1" and busy.json()["code"] == "database_busy"
    assert statuses.count(200) > 0
    assert 0 < peak[0] <= WORKERS * POOL_MAX, peak[0]
