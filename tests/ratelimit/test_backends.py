"""One contract, run against every backend: exact algorithm boundaries on a fake clock, atomicity, resets."""
from __future__ import annotations

import threading

import pytest

from apps.ratelimit.algorithms import Limit
from apps.ratelimit.backends.base import Hit
from apps.ratelimit.backends.memory import MemoryBackend
from apps.ratelimit.backends.redis import RedisBackend
from tests.ratelimit.conftest import T0_US

PER_MINUTE_100 = Limit.gcra(rate=100, period_s=60, burst=100)
WINDOW_10_PER_MINUTE = Limit.sliding_window(rate=10, period_s=60)


def hit(limit: Limit, key: str = "bulwark:ratelimit:{t1}:1:k", cost: int = 1, enforce: bool = True) -> Hit:
    return Hit(key, limit, cost, enforce)


class BackendContract:
    @pytest.fixture
    def backend(self, clock):
        raise NotImplementedError

    def allowed_count(self, backend, limit: Limit, n: int) -> int:
        return sum(backend.decide([hit(limit)])[0].allowed for _ in range(n))

    def test_gcra_allows_exactly_the_burst_then_one_per_emission_interval(self, backend, clock):
        assert self.allowed_count(backend, PER_MINUTE_100, 150) == 100
        refused = backend.decide([hit(PER_MINUTE_100)])[0]
        assert (refused.allowed, refused.remaining, refused.retry_after_us) == (False, 0, 600_000)
        clock.advance(us=599_999)
        assert not backend.decide([hit(PER_MINUTE_100)])[0].allowed
        clock.advance(us=1)
        assert backend.decide([hit(PER_MINUTE_100)])[0].allowed
        assert not backend.decide([hit(PER_MINUTE_100)])[0].allowed

    def test_gcra_reports_remaining_and_reset(self, backend, clock):
        first = backend.decide([hit(PER_MINUTE_100)])[0]
        assert (first.allowed, first.limit, first.remaining, first.reset_us) == (True, 100, 99, 600_000)
        clock.advance(s=0.3)
        second = backend.decide([hit(PER_MINUTE_100)])[0]
        assert (second.remaining, second.reset_us) == (98, 900_000)

    def test_gcra_burst_smaller_than_rate(self, backend, clock):
        limit = Limit.gcra(rate=10, period_s=1, burst=2)
        assert self.allowed_count(backend, limit, 5) == 2
        clock.advance(us=100_000)
        assert self.allowed_count(backend, limit, 5) == 1

    def test_gcra_refills_completely_when_idle(self, backend, clock):
        assert self.allowed_count(backend, PER_MINUTE_100, 100) == 100
        clock.advance(s=60)
        assert self.allowed_count(backend, PER_MINUTE_100, 150) == 100

    def test_cost_takes_several_units_and_a_refused_cost_takes_none(self, backend, clock):
        limit = Limit.gcra(rate=10, period_s=60, burst=10)
        assert backend.decide([hit(limit, cost=5)])[0].remaining == 5
        refused = backend.decide([hit(limit, cost=6)])[0]
        assert (refused.allowed, refused.remaining, refused.retry_after_us) == (False, 5, 6_000_000)
        assert backend.decide([hit(limit, cost=5)])[0].allowed

    def test_sliding_window_refuses_past_the_limit_and_carries_the_weight_over_the_boundary(self, backend, clock):
        assert clock() == T0_US  # a window starts here
        clock.advance(s=59)
        assert self.allowed_count(backend, WINDOW_10_PER_MINUTE, 15) == 10
        clock.advance(s=1)  # next window: the previous one still weighs fully, no doubled burst
        refused = backend.decide([hit(WINDOW_10_PER_MINUTE)])[0]
        assert (refused.allowed, refused.retry_after_us) == (False, 6_000_000)
        clock.advance(us=5_999_999)
        assert not backend.decide([hit(WINDOW_10_PER_MINUTE)])[0].allowed
        clock.advance(us=1)  # weight 0.9: 9 + 1 fits exactly
        allowed = backend.decide([hit(WINDOW_10_PER_MINUTE)])[0]
        assert (allowed.allowed, allowed.remaining, allowed.reset_us) == (True, 0, 54_000_000)
        assert not backend.decide([hit(WINDOW_10_PER_MINUTE)])[0].allowed

    def test_sliding_window_forgets_a_window_two_windows_back(self, backend, clock):
        assert self.allowed_count(backend, WINDOW_10_PER_MINUTE, 10) == 10
        clock.advance(s=120)
        assert self.allowed_count(backend, WINDOW_10_PER_MINUTE, 15) == 10

    def test_a_refused_enforcing_limit_consumes_nothing_anywhere(self, backend, clock):
        strict = hit(Limit.gcra(rate=1, period_s=60, burst=1), key="bulwark:ratelimit:{t1}:1:strict")
        lenient = hit(Limit.gcra(rate=3, period_s=60, burst=3), key="bulwark:ratelimit:{t1}:2:lenient")
        assert [o.allowed for o in backend.decide([strict, lenient])] == [True, True]
        assert [o.allowed for o in backend.decide([strict, lenient])] == [False, True]
        assert [o.allowed for o in backend.decide([strict, lenient])] == [False, True]
        assert backend.decide([lenient])[0].remaining == 1  # only the first call took from it

    def test_a_refusing_shadow_limit_does_not_block_and_is_not_stored(self, backend, clock):
        shadow = hit(Limit.gcra(rate=1, period_s=60, burst=1), key="bulwark:ratelimit:{t1}:1:s", enforce=False)
        enforce = hit(Limit.gcra(rate=10, period_s=60, burst=10), key="bulwark:ratelimit:{t1}:2:e")
        backend.decide([shadow, enforce])
        outcomes = backend.decide([shadow, enforce])
        assert [o.allowed for o in outcomes] == [False, True]
        assert backend.decide([enforce])[0].remaining == 7

    def test_reset_forgets_one_key(self, backend, clock):
        limit = Limit.gcra(rate=1, period_s=60, burst=1)
        backend.decide([hit(limit, key="bulwark:ratelimit:{t1}:1:a")])
        backend.decide([hit(limit, key="bulwark:ratelimit:{t1}:1:b")])
        assert backend.reset("bulwark:ratelimit:{t1}:1:a") is True
        assert backend.reset("bulwark:ratelimit:{t1}:1:a") is False
        assert backend.decide([hit(limit, key="bulwark:ratelimit:{t1}:1:a")])[0].allowed
        assert not backend.decide([hit(limit, key="bulwark:ratelimit:{t1}:1:b")])[0].allowed

    def test_concurrent_threads_get_exactly_the_burst(self, backend, clock):
        allowed = []
        lock = threading.Lock()

        def worker() -> None:
            mine = sum(backend.decide([hit(PER_MINUTE_100)])[0].allowed for _ in range(40))
            with lock:
                allowed.append(mine)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sum(allowed) == 100


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self, clock):
        return MemoryBackend(clock=clock)

    def test_idle_keys_are_swept(self, backend, clock):
        backend.decide([hit(PER_MINUTE_100)])
        clock.advance(s=120)
        backend.decide([hit(PER_MINUTE_100, key="bulwark:ratelimit:{t1}:1:other")])
        assert list(backend._states) == ["bulwark:ratelimit:{t1}:1:other"]


class TestRedisBackend(BackendContract):
    @pytest.fixture
    def backend(self, clock, redis_url):
        return RedisBackend(url=redis_url, clock=clock)

    def test_keys_expire_when_their_state_stops_mattering(self, backend, clock):
        backend.decide([hit(PER_MINUTE_100, cost=3)])
        ttl_ms = backend.client.pttl("bulwark:ratelimit:{t1}:1:k")
        assert 1_700 <= ttl_ms <= 1_800  # three emission intervals of 600 ms

    def test_one_round_trip_per_decision(self, backend, clock, monkeypatch):
        backend.decide([hit(PER_MINUTE_100)])  # the script is loaded once per server, then called by SHA
        hits = [hit(PER_MINUTE_100, key=f"bulwark:ratelimit:{{t1}}:{i}:k") for i in range(5)]
        sent = []
        connection_class = backend.client.connection_pool.connection_class
        original_send = connection_class.send_command

        def counting_send(self, *args, **kwargs):
            sent.append(args[0])
            return original_send(self, *args, **kwargs)

        monkeypatch.setattr(connection_class, "send_command", counting_send)
        backend.decide(hits)
        assert sent == ["EVALSHA"]

    def test_server_time_is_used_without_an_injected_clock(self, redis_url):
        backend = RedisBackend(url=redis_url)
        assert [backend.decide([hit(PER_MINUTE_100)])[0].allowed for _ in range(101)].count(True) == 100
