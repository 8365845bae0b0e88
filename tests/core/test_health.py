import os
import subprocess
import sys

import pytest
from django.conf import settings

from apps.core import health
from benchmarks.ratelimit_harness import port


@pytest.fixture
def store_down(settings, redis_url):
    """The store cache pointed at a loopback port where nothing listens: a real refused connection."""
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port(52)}/0"}}


@pytest.mark.django_db
def test_healthz_does_no_io(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_names_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["store"]["status"] == "ok"


@pytest.mark.django_db
def test_readyz_503_when_a_check_fails(client):
    health.register_check("broken", lambda: (health.FAIL, "down on purpose"))
    try:
        response = client.get("/readyz")
    finally:
        health._checks.pop("broken")
    assert response.status_code == 503
    assert response.json()["checks"]["broken"] == {"status": "fail", "detail": "down on purpose"}


@pytest.mark.django_db
def test_store_outage_is_200_degraded_naming_the_store(client, store_down):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["store"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"
    assert "store" in body["degraded"]


@pytest.mark.django_db
def test_store_outage_is_503_when_the_store_is_required(client, store_down, settings):
    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK["CORE"], "HEALTH_REQUIRE_STORE": True}}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"


@pytest.mark.django_db
def test_database_failure_is_503(client, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: (health.FAIL, "OperationalError: down"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"status": "fail", "detail": "OperationalError: down"}


@pytest.mark.django_db
def test_degraded_flag_reported_without_failing(client):
    health.mark_degraded("ratelimit", "store unreachable")
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["degraded"] == {"ratelimit": "store unreachable"}
    health.mark_ok("ratelimit")
    assert client.get("/readyz").json()["status"] == "ok"


def test_deploy_check_passes_with_debug_off_and_a_real_secret():
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "x7#" * 20 + "a-real-looking-secret-key-for-tests", "ALLOWED_HOSTS": "bulwark.example.com"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DEBUG": "0"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
