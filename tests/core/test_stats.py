"""The one stats pipeline: registration, batching, one flusher per process, loss bounded to one interval."""
from __future__ import annotations

import threading
import time

import pytest

from apps.core.stats import CounterSink, Pipeline


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
    pipeline._wake.set()  # stop this test's thread


@pytest.mark.parametrize("bad", [0, -1, "5"])
def test_the_flush_interval_setting_is_validated(settings, bad):
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.conf import core_settings

    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK.get("CORE", {}), "STATS_FLUSH_INTERVAL_S": bad}}
    with pytest.raises(ImproperlyConfigured, match="STATS_FLUSH_INTERVAL_S"):
        core_settings.validate()
