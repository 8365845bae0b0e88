"""Request observers: other apps watch each request through monitoring's middleware (optimization's sampler).

    class Observer:
        def begin(self, request) -> state: ...            # before the view; state is handed back to `end`
        def end(self, request, response, state, timing) -> None: ...   # after the response was produced

`timing` carries wall_ms, cpu_ms (this thread's CPU time), db_ms and db_queries of the request. With no
observer registered the middleware pays one tuple truth test per request; observers are kept in an
immutable tuple so the request path reads them without a lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Timing:
    wall_ms: float
    cpu_ms: float
    db_ms: float
    db_queries: int


class RequestObserver(Protocol):
    def begin(self, request) -> Any: ...

    def end(self, request, response, state: Any, timing: Timing) -> None: ...


active: tuple[RequestObserver, ...] = ()
_lock = threading.Lock()


def register_request_observer(observer: RequestObserver) -> None:
    global active
    with _lock:
        if observer not in active:
            active = (*active, observer)


def unregister_request_observer(observer: RequestObserver) -> None:
    global active
    with _lock:
        active = tuple(o for o in active if o is not observer)
