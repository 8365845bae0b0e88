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
