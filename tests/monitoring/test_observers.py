"""Request observers: what a higher app (optimization) registers to see every measured request, with its
timing; nothing called, and no CPU clock read, when none is registered; a failing observer never breaks
the request."""
from __future__ import annotations

import pytest

from apps.monitoring import observers
from apps.monitoring.middleware import MonitoringMiddleware

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/"


class Recording:
    def __init__(self) -> None:
        self.seen = []

    def begin(self, request):
        return {"path": request.path}

    def end(self, request, response, state, timing):
        self.seen.append((state["path"], response.status_code, timing))


@pytest.fixture
def observer():
    recording = observers.register_request_observer(Recording())
    yield recording
    observers.unregister_request_observer(recording)


def test_an_observer_sees_every_request_with_its_timing(sink, tenant_a, token_client, observer):
    response = token_client(tenant_a, "viewer").get(ME)
    [(path, status, timing)] = observer.seen
    assert (path, status) == (ME, 200)
    assert timing.db_queries >= 1 and 0 < timing.db_ms <= timing.wall_ms
    assert timing.cpu_ms > 0
    assert float(response["X-Response-Time"][:-2]) == pytest.approx(timing.wall_ms, abs=0.002)
    [(key, agg)] = sink.take().items()
    assert agg.queries_sum == timing.db_queries  # the recorder got the same figures


def test_registering_twice_observes_once_and_unregistering_stops(sink, client, observer):
    observers.register_request_observer(observer)
    client.get("/healthz")
    observers.unregister_request_observer(observer)
    client.get("/healthz")
    assert len(observer.seen) == 1


def test_timing_on_a_fake_clock(sink, rf):
    """Wall time from the monotonic clock, CPU time from the thread clock (both core's Clock)."""
    from django.http import HttpResponse

    from apps.core.clock import FakeClock

    clock = FakeClock()

    def view(request):
        clock.advance(0.040)
        clock.advance_cpu(0.015)
        return HttpResponse(b"ok")

    middleware = MonitoringMiddleware(view)
    middleware.clock = clock
    recording = observers.register_request_observer(Recording())
    try:
        response = middleware(rf.get("/healthz"))
    finally:
        observers.unregister_request_observer(recording)
    [(_path, _status, timing)] = recording.seen
    assert (timing.wall_ms, timing.cpu_ms, timing.db_queries) == (pytest.approx(40.0), pytest.approx(15.0), 0)
    assert response["X-Response-Time"] == "40.000ms"


def test_a_failing_observer_is_skipped_and_the_request_answers(sink, client, observer):
    class Broken:
        def begin(self, request):
            raise RuntimeError("begin broke")

        def end(self, request, response, state, timing):
            raise AssertionError("end of an observer whose begin failed must not run")

    class BrokenAtTheEnd(Recording):
        def end(self, request, response, state, timing):
            raise RuntimeError("end broke")

    broken, late = Broken(), BrokenAtTheEnd()
    observers.register_request_observer(broken)
    observers.register_request_observer(late)
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        observers.unregister_request_observer(broken)
        observers.unregister_request_observer(late)
    assert len(observer.seen) == 1


def test_without_observers_the_cpu_clock_is_never_read(sink, rf, monkeypatch):
    from django.http import HttpResponse

    from apps.core.clock import FakeClock

    clock = FakeClock()
    monkeypatch.setattr(clock, "thread_time", lambda: pytest.fail("thread_time read without observers"))
    middleware = MonitoringMiddleware(lambda request: HttpResponse(b"ok"))
    middleware.clock = clock
    monkeypatch.setattr(observers, "_observers", ())  # installed apps (optimization) may have registered one
    assert observers.request_observers() == ()
    assert middleware(rf.get("/healthz")).status_code == 200


def test_an_observer_not_watching_a_request_costs_no_cpu_clock_and_is_not_ended(sink, rf, monkeypatch):
    """`begin` returning None (not sampled) means: no `end` for this request, and with no observer watching
    the middleware reads no CPU clock (the optimization collector samples a few requests a minute)."""
    from django.http import HttpResponse

    from apps.core.clock import FakeClock

    class Unsampled:
        def __init__(self) -> None:
            self.begun = 0

        def begin(self, request):
            self.begun += 1
            return None

        def end(self, request, response, state, timing):
            raise AssertionError("end of a request the observer did not watch")

    clock = FakeClock()
    monkeypatch.setattr(clock, "thread_time", lambda: pytest.fail("thread_time read with no observer watching"))
    middleware = MonitoringMiddleware(lambda request: HttpResponse(b"ok"))
    middleware.clock = clock
    unsampled = Unsampled()
    monkeypatch.setattr(observers, "_observers", (unsampled,))
    response = middleware(rf.get("/healthz"))
    assert response.status_code == 200 and "X-Response-Time" in response
    assert unsampled.begun == 1
    [(_key, agg)] = sink.take().items()
    assert agg.count == 1  # still measured


def test_only_the_watching_observers_are_ended(sink, rf, monkeypatch):
    from django.http import HttpResponse

    class Unsampled(Recording):
        def begin(self, request):
            return None

    unsampled, watching = Unsampled(), Recording()
    monkeypatch.setattr(observers, "_observers", (unsampled, watching))
    middleware = MonitoringMiddleware(lambda request: HttpResponse(b"ok"))
    assert middleware(rf.get("/healthz")).status_code == 200
    assert unsampled.seen == []
    [(path, status, timing)] = watching.seen
    assert (path, status) == ("/healthz", 200) and timing.cpu_ms >= 0
