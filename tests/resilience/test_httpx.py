"""The httpx transports against a real local HTTP server that fails on command."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from apps.resilience.errors import BreakerOpen
from apps.resilience.httpx import AsyncBreakerTransport, BreakerTransport
from apps.resilience.runtime import get_breaker
from benchmarks.ratelimit_harness import port
from tests.resilience.factories import BreakerPolicyFactory

PORT = port(102)


class Dependency(ThreadingHTTPServer):
    """Answers 200, or `fail_status` while it is set; counts the requests that reached it."""

    fail_status: int | None = None
    hits = 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits += 1
        if self.path.endswith("/slow"):
            time.sleep(1.0)
        status = self.server.fail_status or 200
        body = b'{"ok": true}' if status == 200 else b'{"error": "down"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def dependency():
    server = Dependency(("127.0.0.1", PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def policy(db, tenant_a):
    return BreakerPolicyFactory(tenant=tenant_a, name="local-api", consecutive_failures=3, open_duration_s=30,
                                failure_statuses=[500, 503], ignored_statuses=[404])


URL = f"http://127.0.0.1:{PORT}/v1/thing"


def test_failing_statuses_open_the_breaker_and_later_requests_never_leave(fresh_registry, dependency, policy,
                                                                         tenant_a):
    transport = BreakerTransport(policies={"127.0.0.1": "local-api"}, tenant=tenant_a)
    with httpx.Client(transport=transport, timeout=5) as client:
        assert client.get(URL).status_code == 200
        dependency.fail_status = 503
        for _ in range(3):
            assert client.get(URL).status_code == 503  # the caller still sees the answer
        fresh_registry.flush_all()
        hits = dependency.hits
        with pytest.raises(BreakerOpen):
            client.get(URL)
        assert dependency.hits == hits


def test_ignored_statuses_do_not_count(fresh_registry, dependency, policy, tenant_a):
    dependency.fail_status = 404
    with httpx.Client(transport=BreakerTransport(policies={"127.0.0.1": "local-api"}, tenant=tenant_a)) as client:
        for _ in range(5):
            assert client.get(URL).status_code == 404
    fresh_registry.flush_all()
    assert get_breaker("local-api", tenant_a).figures.calls == 0


def test_connection_errors_count_as_failures(fresh_registry, policy, tenant_a):
    transport = BreakerTransport(policies={"127.0.0.1": "local-api"}, tenant=tenant_a)
    with httpx.Client(transport=transport, timeout=1) as client:  # nothing listens: the server fixture is off
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                client.get(URL)
    fresh_registry.flush_all()
    assert get_breaker("local-api", tenant_a).state == "open"


def test_other_hosts_get_a_breaker_named_after_the_host(fresh_registry, dependency):
    with httpx.Client(transport=BreakerTransport()) as client:
        client.get(URL)
    assert ("127.0.0.1" in {name for _, name in fresh_registry.breakers})


def test_by_host_off_leaves_unlisted_hosts_alone(fresh_registry, dependency):
    with httpx.Client(transport=BreakerTransport(by_host=False)) as client:
        client.get(URL)
    assert fresh_registry.breakers == {}


@pytest.fixture
def warm(policy, tenant_a):
    return get_breaker("local-api", tenant_a)


async def test_async_transport_counts_and_refuses(fresh_registry, dependency, warm, tenant_a):
    transport = AsyncBreakerTransport(policies={"127.0.0.1": "local-api"}, tenant=tenant_a)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        assert (await client.get(URL)).status_code == 200
        dependency.fail_status = 500
        for _ in range(3):
            assert (await client.get(URL)).status_code == 500
        fresh_registry.flush_all(write_db=False)
        with pytest.raises(BreakerOpen):
            await client.get(URL)


def test_the_policy_timeout_applies_to_its_requests(fresh_registry, dependency, db, tenant_a):
    BreakerPolicyFactory(tenant=tenant_a, name="local-api", timeout_s=0.1)
    transport = BreakerTransport(policies={"127.0.0.1": "local-api"}, tenant=tenant_a)
    with httpx.Client(transport=transport, timeout=30) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(URL + "/slow")
        assert time.monotonic() - started < 0.9
    fresh_registry.flush_all()
    assert get_breaker("local-api", tenant_a).figures.failures == 1
