"""The platform login limit: per IP and per username, with a lockout, at the admin, the API login and tokens."""
from __future__ import annotations

import pytest
from django.core.checks import run_checks

from apps.core import health
from apps.tenancy import login_limit
from benchmarks.ratelimit_harness import port
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-123"


@pytest.fixture
def limits(settings):
    def set_limits(**values):
        settings.BULWARK = {**settings.BULWARK, "LOGIN_LIMIT": {"FAILURES_PER_IP": 100, "FAILURES_PER_USERNAME": 3,
                                                                "LOCKOUT_S": 600, **values}}
    set_limits()
    return set_limits


def _login(client, url, username, password, ip="198.51.100.7"):
    return client.post(url, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/admin/login/", "/api/auth/login/"])
def test_a_username_is_locked_out_after_its_failures_even_with_the_right_password(url, client, limits):
    user = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        assert _login(client, url, user.username, "wrong").status_code == 200  # the form again
    response = _login(client, url, user.username, PASSWORD, ip="192.0.2.99")  # from another IP as well
    assert response.status_code == 429
    assert 590 <= int(response["Retry-After"]) <= 600
    assert not client.session.get("_auth_user_id")


def test_a_client_ip_is_locked_out_after_failures_across_usernames(client, limits):
    limits(FAILURES_PER_IP=4, FAILURES_PER_USERNAME=100)
    user = UserFactory(is_staff=True)
    for i in range(4):
        _login(client, "/admin/login/", f"guess-{i}", "wrong")
    assert _login(client, "/admin/login/", user.username, PASSWORD).status_code == 429
    assert _login(client, "/admin/login/", user.username, PASSWORD, ip="192.0.2.5").status_code == 302


def test_a_successful_sign_in_forgets_the_usernames_failures(client, limits):
    user = UserFactory(is_staff=True)
    for _ in range(2):
        _login(client, "/admin/login/", user.username, "wrong")
    assert _login(client, "/admin/login/", user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "/admin/login/", user.username, "wrong")
    assert _login(client, "/admin/login/", user.username, PASSWORD).status_code == 302


def test_the_lockout_ends_after_its_window(limits):
    for _ in range(3):
        login_limit.login_failure_record(ip=None, username="Alice", now=1000.0)
    assert login_limit.login_locked_out(ip=None, username="alice ", now=1000.0) == 600
    assert login_limit.login_locked_out(ip=None, username="alice", now=1599.5) == 1
    assert login_limit.login_locked_out(ip=None, username="alice", now=1600.0) is None


def test_rejected_bearer_tokens_lock_the_ip_out_of_token_guessing_in_the_error_shape(
        tenant_a, token_client, limits, client):
    limits(FAILURES_PER_IP=3)
    for _ in range(2):
        assert client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer bwk_nope_guess").status_code == 401
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer bwk_nope_guess")
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out" and response["Retry-After"] == "600"
    assert token_client(tenant_a, "viewer").get("/api/v1/me/").status_code == 200  # a real token still works


def test_the_limit_fails_open_when_the_store_is_down(client, limits, settings, redis_url):
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"],
                                                      "LOCATION": f"redis://127.0.0.1:{port(52)}/0"}}
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    user = UserFactory(is_staff=True)
    for _ in range(4):
        _login(client, "/admin/login/", user.username, "wrong")
    assert _login(client, "/admin/login/", user.username, PASSWORD).status_code == 302
    assert "login_limit" in health.degraded_components()


def test_check_deploy_warns_when_the_limit_is_off(settings):
    def ids() -> set[str]:
        return {message.id for message in run_checks(include_deployment_checks=True)}

    assert "bulwark_tenancy.W001" not in ids()
    settings.BULWARK = {**settings.BULWARK, "LOGIN_LIMIT": {"ENABLED": False}}
    assert "bulwark_tenancy.W001" in ids()
    settings.BULWARK = {**settings.BULWARK, "LOGIN_LIMIT": {}}
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert "bulwark_tenancy.W002" in ids()
