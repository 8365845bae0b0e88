"""Evidence collection: the observer API of monitoring's middleware, SQL fingerprints, the sampling cap."""
from __future__ import annotations

import pytest
from django.test import override_settings

from apps.monitoring import observers
from apps.optimization import collector
from apps.optimization.fingerprint import fingerprint, normalise
from apps.optimization.models import RequestSample
from benchmarks.optimization_demo.urls import PLANTED

pytestmark = [pytest.mark.django_db, pytest.mark.urls("benchmarks.optimization_demo.urls")]


def test_fingerprints_ignore_literals_and_list_lengths():
    assert normalise("SELECT a FROM t WHERE id IN (%s, %s, %s) AND n = 'x' LIMIT 21") == \
        "SELECT a FROM t WHERE id IN (...) AND n = ? LIMIT ?"
    assert fingerprint("SELECT a FROM t WHERE id = %s") == fingerprint("SELECT a FROM t WHERE id = 42")
    assert fingerprint("SELECT a FROM t WHERE id = %s") != fingerprint("SELECT b FROM t WHERE id = %s")


def test_an_observer_sees_every_request_with_its_timing(client):
    seen = []

    class Probe:
        def begin(self, request):
            return request.path

        def end(self, request, response, state, timing):
            seen.append((state, response.status_code, timing.db_queries >= 5, timing.cpu_ms >= 0))

    probe = Probe()
    observers.register_request_observer(probe)
    try:
        client.get("/" + PLANTED["repeated_query"])
    finally:
        observers.unregister_request_observer(probe)
    client.get("/" + PLANTED["repeated_query"])
    assert seen == [("/" + PLANTED["repeated_query"], 200, True, True)]
    assert probe not in observers.request_observers()


def test_a_sampled_request_records_its_queries_and_is_stored_at_the_next_flush(drive):
    drive(PLANTED["repeated_query"], n=1)
    sample = RequestSample.objects.get()
    assert sample.route == PLANTED["repeated_query"] and sample.method == "GET"
    [query] = [q for q in sample.queries if "optimization_demo_setting" in q["sql"]]
    assert (query["n"], query["distinct"], query["identical"]) == (5, 1, 5)
    assert sample.body_hash and sample.tenant_id is None


def test_the_sampling_cap_bounds_the_samples_of_a_route(drive):
    with override_settings(BULWARK={"OPTIMIZATION": {"MAX_SAMPLES_PER_ROUTE_MINUTE": 3}}):
        drive(PLANTED["repeated_query"], n=8)
    assert RequestSample.objects.count() == 3


def test_sampling_off_records_nothing(drive):
    with override_settings(BULWARK={"OPTIMIZATION": {"SAMPLE_RATE": 0}}):
        drive(PLANTED["repeated_query"], n=5)
    assert not RequestSample.objects.exists()
    assert collector.sink.take() == []


def test_a_batch_is_written_in_one_statement_and_reads_back_field_for_field(django_assert_num_queries):
    from datetime import UTC, datetime

    taken_at = datetime(2026, 12, 5, 7, 30, 1, 123456, tzinfo=UTC)
    sample = {"tenant_id": None, "taken_at": taken_at, "route": "demo/x/", "method": "GET", "status": 502,
              "wall_ms": 12.5, "cpu_ms": 3.25, "db_ms": 0.5, "db_queries": 2, "size": 42, "list_len": None,
              "body_hash": "ab12", "cache_status": "bulwark; hit",
              "queries": [{"fp": "f", "sql": "SELECT 'it''s' \u00e9", "n": 2, "params": ["a\"b", None, 1.5]}],
              "calls": [{"host": "h", "ms": 1.0, "timeout_s": None, "status": None, "error": "ConnectError",
                         "breaker": None}],
              "frames": [["app.views.f", 3]]}
    with django_assert_num_queries(1):
        collector.sink.write([sample, {**sample, "list_len": 7, "route": "demo/y/"}], 0)
    first, second = RequestSample.objects.order_by("route")
    for name, value in sample.items():
        assert getattr(first, name) == value, name
    assert (second.route, second.list_len) == ("demo/y/", 7)


def test_the_stack_sampler_reads_only_requests_that_ran_for_an_interval():
    import threading
    import time

    sampler = collector.StackSampler()
    sampler._root = "/"  # every frame counts as own code here
    young, old = collector.RequestState("young/"), collector.RequestState("old/")
    stop = threading.Event()

    def busy(state):
        state.thread_id = threading.get_ident()
        state.started = time.perf_counter() - (10 if state is old else -3600)  # `young` stays young
        sampler.watch(state)
        while not stop.is_set():
            sum(range(100))
        sampler.unwatch(state)

    threads = [threading.Thread(target=busy, args=(s,)) for s in (young, old)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while not old.frames and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert sum(old.frames.values()) >= 1
    assert not young.frames
