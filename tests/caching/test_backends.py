"""One contract, run against every backend: entries, owner-checked locks, versioned tags, memory report."""
from __future__ import annotations

import pytest

from apps.caching.backends.base import LOCK_ACQUIRED, LOCK_FREE, LOCK_HELD
from apps.caching.backends.memory import MemoryBackend
from apps.caching.backends.redis import RedisBackend
from apps.caching.entries import Entry, adaptive_ttl_s, etag_matches
from apps.core.clock import FakeClock

E = "bulwark:cache:{c1}:r:1:abc"
T1, T2 = "bulwark:cache:{c1}:tag:one", "bulwark:cache:{c1}:tag:two"


def lookup(backend, *, lock_on_miss=True, token="me", tags=(T1, T2)):
    return backend.lookup(key=E, tag_keys=list(tags), lock_key=E + ":lock", token=token, lock_ttl_ms=5000,
                          lock_on_miss=lock_on_miss)


class BackendContract:
    @pytest.fixture
    def backend(self):
        raise NotImplementedError

    def test_a_miss_takes_the_lock_once(self, backend):
        first = lookup(backend, token="a")
        second = lookup(backend, token="b")
        assert (first.value, first.lock) == (None, LOCK_ACQUIRED)
        assert (second.value, second.lock) == (None, LOCK_HELD)

    def test_a_lookup_without_locking_reports_a_free_lock(self, backend):
        assert lookup(backend, lock_on_miss=False).lock == LOCK_FREE

    def test_stored_value_is_returned_with_tag_versions(self, backend):
        backend.set(key=E, value=b"\x00body", ttl_ms=5000)
        found = lookup(backend)
        assert found.value == b"\x00body"
        assert found.lock == LOCK_FREE
        assert found.tag_versions == (0, 0)

    def test_bumping_a_tag_moves_only_its_version(self, backend):
        backend.bump_tags(tag_keys=[T1], ttl_s=60)
        backend.bump_tags(tag_keys=[T1], ttl_s=60)
        assert lookup(backend).tag_versions == (2, 0)
        assert backend.tag_versions(tag_keys=[T2, T1]) == (0, 2)

    def test_only_the_owner_releases_a_lock(self, backend):
        lookup(backend, token="a")
        backend.release(lock_key=E + ":lock", token="b")
        assert not backend.acquire(lock_key=E + ":lock", token="c", ttl_ms=5000)
        backend.release(lock_key=E + ":lock", token="a")
        assert backend.acquire(lock_key=E + ":lock", token="c", ttl_ms=5000)

    def test_values_expire(self, backend, advance):
        backend.set(key=E, value=b"v", ttl_ms=50)
        advance(0.2)
        assert lookup(backend, lock_on_miss=False).value is None

    def test_locks_expire_so_a_crashed_leader_frees_them(self, backend, advance):
        assert backend.acquire(lock_key="bulwark:cache:{c1}:l", token="a", ttl_ms=50)
        advance(0.2)
        assert backend.acquire(lock_key="bulwark:cache:{c1}:l", token="b", ttl_ms=50)

    def test_memory_report_counts_only_the_pattern(self, backend):
        backend.set(key=E, value=b"x" * 100, ttl_ms=5000)
        backend.set(key="bulwark:cache:{c2}:r:1:abc", value=b"y" * 100, ttl_ms=5000)
        report = backend.memory_usage(pattern="bulwark:cache:{c1}:*", max_keys=100)
        assert report["keys"] == 1
        assert report["bytes"] >= 100
        assert report["complete"] is True




class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def clock(self):
        return FakeClock(monotonic=100.0)

    @pytest.fixture
    def backend(self, clock):
        return MemoryBackend(max_bytes=1000, clock=clock)

    @pytest.fixture
    def advance(self, clock):
        def move(seconds: float) -> None:
            clock.advance(seconds)

        return move

    @staticmethod
    def value(backend, key: str) -> bytes | None:
        return backend.lookup(key=key, tag_keys=[], lock_key=key + ":lock", token="t", lock_ttl_ms=1,
                              lock_on_miss=False).value

    def test_least_recently_used_entries_are_evicted_beyond_the_byte_bound(self, backend):
        backend.set(key="a", value=b"x" * 400, ttl_ms=5000)
        backend.set(key="b", value=b"x" * 400, ttl_ms=5000)
        self.value(backend, "a")
        backend.set(key="c", value=b"x" * 400, ttl_ms=5000)
        assert self.value(backend, "b") is None
        assert self.value(backend, "a") is not None
        assert self.value(backend, "c") is not None

    def test_a_value_larger_than_the_bound_is_not_kept(self, backend):
        backend.set(key="a", value=b"x" * 2000, ttl_ms=5000)
        assert self.value(backend, "a") is None


class TestRedisBackend(BackendContract):
    @pytest.fixture
    def backend(self, redis_url):
        import redis

        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        yield RedisBackend(client=client)
        client.flushdb()

    @pytest.fixture
    def advance(self):
        import time

        return time.sleep


def test_entries_round_trip_and_garbage_is_a_miss():
    entry = Entry(status=200, headers=[("Content-Type", "application/json")], body=b'{"a": 1}', etag='"e"',
                  stored_at=5.0, ttl_s=10, swr_s=5, sie_s=20, tag_versions={"k": 3}, origin_ms=12.5)
    assert Entry.decode(entry.encode()) == entry
    assert Entry.decode(b"\x00\x00\x00\x05garbage") is None
    assert Entry.decode(b"") is None


def test_entry_windows():
    entry = Entry(status=200, headers=[], body=b"", etag='"e"', stored_at=0.0, ttl_s=10, swr_s=5, sie_s=20)
    assert entry.is_fresh(9.9) and not entry.is_fresh(10.0)
    assert entry.within_swr(14.9) and not entry.within_swr(15.0)
    assert entry.within_stale_if_error(29.9) and not entry.within_stale_if_error(30.0)
    assert entry.store_ttl_ms == 31_000


def test_etag_comparison_is_weak_and_accepts_lists_and_star():
    assert etag_matches('W/"a", "b"', '"b"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches("", '"b"')


@pytest.mark.parametrize("previous, unchanged, expected", [
    (10, True, 15), (28, True, 30), (30, True, 30), (10, False, 5), (6, False, 5), (5, False, 5),
])
def test_adaptive_ttl_stays_within_bounds(previous, unchanged, expected):
    assert adaptive_ttl_s(previous_ttl_s=previous, unchanged=unchanged, ttl_min_s=5, ttl_max_s=30) == expected
