"""The metrics stores themselves: a merge lands whole or not at all, only an unreachable store is an outage,
and claims (ingest batch ids, per-slot work) live in the store behind the sink's guard."""
from __future__ import annotations

import math

import pytest

from apps.core import histogram
from apps.monitoring.aggregate import MinuteAgg

pytestmark = pytest.mark.django_db
MINUTE = 30_000_000


def agg(duration_ms=5.0, n=1):
    figures = MinuteAgg()
    for _ in range(n):
        figures.add(2, duration_ms, 0.0, 0, 0)
    return figures


def test_a_batch_with_a_figure_that_is_not_finite_is_refused_whole_before_any_write(store, tenant_a):
    bad = agg()
    bad.duration_ms_sum = math.nan
    batch = {(tenant_a.pk, "svc/a", "GET", MINUTE): agg(), (tenant_a.pk, "svc/b", "GET", MINUTE): bad}
    with pytest.raises(ValueError, match="svc/b"):
        store.merge(batch)
    assert store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9) == {}
    assert store.totals() == {}


def test_the_merge_script_checks_every_increment_before_writing_any(store):
    """Lua scripts do not roll back: a bad increment after good ones must not leave the good ones written."""
    from redis.exceptions import ResponseError

    from apps.monitoring.backends.redis import _MERGE

    client = store.client
    key = "bulwark:test:{m0}:merge"
    client.delete(key)
    script = client.register_script(_MERGE)
    with pytest.raises(ResponseError):
        script(keys=[key], args=[60, 1.0, 2.0, "c2", 1, "dur", "nan"])
    with pytest.raises(ResponseError):
        script(keys=[key], args=[60, "inf", 2.0, "c2", 1])
    assert client.exists(key) == 0
    script(keys=[key], args=[60, 1.0, 2.0, "c2", 1, "dur", 3.5])
    assert client.hgetall(key) == {b"c2": b"1", b"dur": b"3.5", b"min": b"1.0", b"max": b"2.0"}
    client.delete(key)


class CuttingProxy:
    """A TCP proxy to the real Redis that closes both sides just before the client sends `marker` (a command
    name): what a connection lost in the middle of a pipeline looks like to the server."""

    def __init__(self, target: tuple[str, int], marker: bytes) -> None:
        import socket
        import threading

        self.target, self.marker = target, marker
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import threading

        while not self.cut.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()
            threading.Thread(target=self._forward, args=(downstream, upstream), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def _forward(self, downstream, upstream) -> None:
        seen = b""
        try:
            while data := downstream.recv(65536):
                seen += data
                at = seen.find(self.marker)
                if at < 0:
                    upstream.sendall(data)
                    seen = seen[-len(self.marker):]
                    continue
                command_start = seen.rfind(b"*", 0, at)
                upstream.sendall(data[:len(data) - (len(seen) - command_start)])
                break
        except OSError:
            pass
        self.cut.set()
        for end in (upstream, downstream, self.listener):
            end.close()


def test_a_merge_cut_off_mid_pipeline_leaves_nothing_written(store, tenant_a):
    """MULTI/EXEC: the server applies a merge only once it has all of it (EXEC), never half of it."""
    import redis

    from apps.core.store import StoreUnavailable
    from apps.monitoring.backends.redis import _MERGE, RedisMetricsStore

    real = store.client
    real.script_load(_MERGE)  # already loaded, so the pipeline sends no SCRIPT LOAD through the proxy
    options = real.connection_pool.connection_kwargs
    proxy = CuttingProxy((options["host"], options["port"]), b"$12\r\nHINCRBYFLOAT\r\n")
    through = RedisMetricsStore(client=redis.Redis(host="127.0.0.1", port=proxy.port, db=options.get("db", 0),
                                                   socket_timeout=2))
    batch = {(tenant_a.pk, f"svc/{i}", "GET", MINUTE): agg() for i in range(20)}
    with pytest.raises(StoreUnavailable):
        through.merge(batch)
    assert proxy.cut.is_set()
    assert store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9) == {}
    assert store.totals() == {}
    store.merge(batch)  # the same batch sent again lands whole
    assert len(store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9)) == 20


def test_a_response_error_is_a_bug_not_an_outage(store, sink, tenant_a):
    """WRONGTYPE (a store someone else wrote into): raised as it is; the guard stays up, health stays ok."""
    from redis.exceptions import ResponseError

    from apps.core import health
    from apps.monitoring.recorder import HEALTH_COMPONENT

    store.client.set(store._pending, "not a sorted set")
    try:
        sink.record(tenant_a.pk, "svc/a", "GET", 200, 5.0)
        with pytest.raises(ResponseError):
            sink.flush(0.0)
        assert not sink.guard.is_down
        assert HEALTH_COMPONENT not in health.degraded_components()
        with pytest.raises(ResponseError):
            store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9)
    finally:
        store.client.delete(store._pending)


def test_an_unreachable_store_is_an_outage(tenant_a):
    import redis

    from apps.core.store import StoreUnavailable
    from apps.monitoring.backends.redis import RedisMetricsStore
    from benchmarks.ratelimit_harness import port

    nobody = redis.Redis(host="127.0.0.1", port=port(39), socket_connect_timeout=0.2)
    down = RedisMetricsStore(client=nobody)
    for call in (lambda: down.merge({(tenant_a.pk, "svc/a", "GET", MINUTE): agg()}), down.totals,
                 lambda: down.claim("bulwark:test:claim", 10), lambda: down.release("bulwark:test:claim")):
        with pytest.raises(StoreUnavailable):
            call()


@pytest.fixture(params=["redis", "database"])
def any_store(request, redis_url):
    from apps.monitoring.backends.database import DatabaseMetricsStore
    from apps.monitoring.backends.redis import RedisMetricsStore

    return RedisMetricsStore() if request.param == "redis" else DatabaseMetricsStore()


def test_a_claim_is_won_once_until_released_or_expired(any_store):
    key = "bulwark:test:{m0}:claim"
    any_store.release(key)
    assert any_store.claim(key, 60) is True
    assert any_store.claim(key, 60) is False
    any_store.release(key)
    assert any_store.claim(key, 60) is True
    any_store.release(key)


def test_slot_claims_go_through_the_sinks_store_and_guard(tenant_a, monkeypatch):
    """With the sink's store unreachable, a slot is claimed per process (locally) and health says so."""
    import redis

    from apps.core import health
    from apps.monitoring import recorder, services
    from apps.monitoring.backends.redis import RedisMetricsStore
    from benchmarks.ratelimit_harness import port

    nobody = redis.Redis(host="127.0.0.1", port=port(39), socket_connect_timeout=0.2)
    monkeypatch.setattr(recorder, "sink", recorder.RequestSink(RedisMetricsStore(client=nobody)))
    monkeypatch.setattr(services, "_local_claims", {})
    assert services.slot_claim(name="test", slot=1, ttl_s=60, now=0.0) is True
    assert services.slot_claim(name="test", slot=1, ttl_s=60, now=1.0) is False
    assert recorder.HEALTH_COMPONENT in health.degraded_components()


def test_ingest_claims_its_batch_id_in_the_sinks_store(sink, store, tenant_a):
    from django.utils import timezone

    from apps.monitoring import services

    data = {"batch_id": "b-1", "records": [{"route": "svc/a", "method": "GET", "status": 200, "duration_ms": 2.0,
                                            "timestamp": timezone.now()}]}
    assert services.ingest_batch(tenant=tenant_a, data=data)["duplicate"] is False
    assert services.ingest_batch(tenant=tenant_a, data=data)["duplicate"] is True
    key = services._dedup_key(tenant_a, "b-1")
    assert store.claim(key, 60) is False  # the claim is the store's
    store.release(key)
    assert services.ingest_batch(tenant=tenant_a, data=data)["duplicate"] is False
    [(_, live)] = store.live(tenant_id=tenant_a.pk, start_minute=0, end_minute=10**9).items()
    assert live.count == 2 and live.hist == {histogram.bucket_of(2.0): 2}
