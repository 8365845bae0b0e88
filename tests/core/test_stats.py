"""The one stats pipeline: registration, batching, one flusher per process, loss bounded to one interval."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.core import stats
from apps.core.stats import CounterSink, Pipeline

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


class RecordingStore:
    """Stands for one store: each write is one round trip."""

    def __init__(self) -> None:
        self.round_trips: list[dict] = []
        self.fail = False

    def write(self, batch, now) -> None:
        if self.fail:
            raise ConnectionError("store down")
        self.round_trips.append({key: dict(counts) for key, counts in batch.items()})

    def totals(self) -> dict:
        out: dict = {}
        for trip in self.round_trips:
            for key, counts in trip.items():
                for field, n in counts.items():
                    out[(key, field)] = out.get((key, field), 0) + n
        return out


def test_registered_sinks_are_flushed_and_replacing_a_name_keeps_one():
    pipeline = Pipeline(interval_s=60, clock=FakeClock())
    first, second = CounterSink(RecordingStore().write), CounterSink(RecordingStore().write)
    pipeline.register("app.a", first, start=False)
    pipeline.register("app.b", second, start=False)
    pipeline.register("app.a", first, start=False)
    assert set(pipeline.sinks()) == {"app.a", "app.b"}
    pipeline.unregister("app.b")
    assert set(pipeline.sinks()) == {"app.a"}


def test_a_thousand_counts_go_to_the_store_in_one_round_trip_per_flush():
    store = RecordingStore()
    pipeline = Pipeline(interval_s=60, clock=FakeClock())
    sink = pipeline.register("t", CounterSink(store.write), start=False)
    for i in range(1000):
        sink.add(("tenant", i % 7), "hits")
    pipeline.flush_all()
    assert len(store.round_trips) == 1
    assert sum(store.totals().values()) == 1000
    pipeline.flush_all()  # nothing new: no round trip
    assert len(store.round_trips) == 1


def test_a_crash_loses_at_most_what_came_after_the_last_flush():
    clock = FakeClock()
    store = RecordingStore()
    pipeline = Pipeline(interval_s=5, clock=clock)
    sink = pipeline.register("t", CounterSink(store.write), start=False)
    for _ in range(30):  # 30 seconds of traffic, one count a second, a flush every 5 s
        sink.add("k", "n")
        clock.now += 1
        if clock.now % 5 == 0:
            pipeline.flush_all()
    sink.add("k", "n")  # arrives after the last flush; the process then dies (the pipeline is dropped)
    stored = store.totals()[("k", "n")]
    assert stored == 30
    assert 31 - stored <= 5  # lost: at most one interval's worth


def test_a_failed_flush_keeps_the_batch_for_the_next_one_and_other_sinks_still_flush():
    failing, healthy = RecordingStore(), RecordingStore()
    pipeline = Pipeline(interval_s=60, clock=FakeClock())
    a = pipeline.register("a", CounterSink(failing.write), start=False)
    b = pipeline.register("b", CounterSink(healthy.write), start=False)
    a.add("k", "n", 3)
    b.add("k", "n", 4)
    failing.fail = True
    pipeline.flush_all()
    assert healthy.totals() == {("k", "n"): 4}
    a.add("k", "n", 2)
    failing.fail = False
    pipeline.flush_all()
    assert failing.totals() == {("k", "n"): 5}


def test_one_flusher_thread_per_process_however_many_sinks_register():
    pipeline = Pipeline(interval_s=0.05, clock=FakeClock())
    before = {t.ident for t in threading.enumerate() if t.name == "bulwark-stats-flusher"}
    stores = [RecordingStore() for _ in range(3)]
    sinks = [pipeline.register(f"s{i}", CounterSink(store.write)) for i, store in enumerate(stores)]
    after = {t.ident for t in threading.enumerate() if t.name == "bulwark-stats-flusher"}
    assert len(after - before) == 1
    for sink in sinks:
        sink.add("k", "n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(store.round_trips for store in stores):
        time.sleep(0.02)
    assert all(store.totals() == {("k", "n"): 1} for store in stores)
    pipeline.stop()
    assert not any(t.ident in after - before for t in threading.enumerate() if t.name == "bulwark-stats-flusher")


@pytest.mark.parametrize("bad", [0, -1, "5"])
def test_the_flush_interval_setting_is_validated(settings, bad):
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.conf import core_settings

    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), "STATS_FLUSH_INTERVAL_S": bad}}
    with pytest.raises(ImproperlyConfigured, match="STATS_FLUSH_INTERVAL_S"):
        core_settings.validate()


def test_the_hot_path_apps_count_into_the_one_pipeline():
    from apps.caching import stats as caching_stats
    from apps.ratelimit import stats as ratelimit_stats
    from apps.resilience.runtime import registry

    sinks = stats.pipeline.sinks()
    assert sinks["ratelimit.decisions"] is ratelimit_stats.stats_counters
    assert sinks["caching.hits"] is caching_stats.sink
    assert sinks["resilience.breakers"] is registry.history
    assert {"monitoring.requests", "monitoring.process"} <= set(sinks)


def test_a_deprecated_per_app_interval_still_sets_the_one_interval_while_set(settings):
    from apps.ratelimit.conf import ratelimit_settings

    pipeline = Pipeline()
    pipeline.register("legacy", CounterSink(RecordingStore().write), start=False,
                      interval_alias=(ratelimit_settings, "STATS_FLUSH_INTERVAL_S"))
    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), "STATS_FLUSH_INTERVAL_S": 7}}
    assert pipeline.interval_s == 7
    with pytest.warns(DeprecationWarning, match="STATS_FLUSH_INTERVAL_S"):
        settings.BULWARK = {**settings.BULWARK, "RATELIMIT": {"STATS_FLUSH_INTERVAL_S": 2}}
        assert pipeline.interval_s == 2


def test_no_thread_while_background_is_off_and_stop_ends_it():
    pipeline = Pipeline(interval_s=60, clock=FakeClock())
    pipeline.background = False
    pipeline.register("t", CounterSink(RecordingStore().write))
    assert not pipeline.running and pipeline._thread is None
    pipeline.background = True
    pipeline.ensure_started()
    thread = pipeline._thread
    assert pipeline.running and thread.is_alive()
    pipeline.stop()
    assert not pipeline.running and not thread.is_alive()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_process_loses_at_most_what_it_counted_since_its_last_flush(tenant_a):
    """A real process counts through ratelimit, caching and resilience; its one flusher writes every interval;
    SIGKILL (no exit flush) loses only the rounds counted after the last flush that began."""
    if connection.vendor != "postgresql":
        pytest.skip("a second process shares the test database only on PostgreSQL")
    from apps.caching.models import CacheStatMinute
    from apps.ratelimit.models import RateLimitStat
    from apps.resilience.models import DependencyMinute
    from tests.caching.factories import CachePolicyFactory
    from tests.ratelimit.factories import RateLimitPolicyFactory

    RateLimitPolicyFactory(tenant=tenant_a, name="crash", match_kind="named", rate=1_000_000)
    CachePolicyFactory(tenant=tenant_a, name="crash")
    env = {**os.environ, "BULWARK_TEST_DB_NAME": connection.settings_dict["NAME"]}
    worker = subprocess.Popen([sys.executable, "-m", "tests.core.stats_worker", str(tenant_a.pk), "0.3"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    flushed: list[int] = []
    counted = 0
    flushers: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len([n for n in flushed if n]) < 3:  # the flusher ran by itself, with counts, three times
            line = worker.stdout.readline()
            assert line and time.monotonic() < deadline, worker.stderr.read() if worker.poll() is not None else ""
            seen = json.loads(line)
            if "flushed" in seen:
                flushed.append(seen["flushed"])
            else:
                counted, flushers = seen["counted"], seen["flushers"]
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        for line in worker.stdout:  # what it printed before it died
            seen = json.loads(line)
            if "flushed" in seen:
                flushed.append(seen["flushed"])
            else:
                counted = seen["counted"]
    finally:
        worker.kill()
        worker.wait(timeout=10)
        worker.stdout.close()
        worker.stderr.close()

    assert flushers == ["bulwark-stats-flusher"]  # one flusher thread, whatever the apps count
    last_flush = flushed[-1]
    stored = {
        "ratelimit": sum(RateLimitStat.objects.filter(tenant=tenant_a).values_list("allowed", flat=True)),
        "caching": sum(CacheStatMinute.objects.filter(tenant=tenant_a).values_list("hits", flat=True)),
        "resilience": sum(DependencyMinute.objects.filter(tenant=tenant_a).values_list("calls", flat=True)),
    }
    for app, n in stored.items():
        # Everything before the last flush is stored; only what came after it (one interval at most) is lost.
        assert last_flush <= n <= counted + 1, (app, last_flush, n, counted)
