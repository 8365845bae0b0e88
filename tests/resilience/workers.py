"""Worker processes for the cross-process tests: `python -m tests.resilience.workers <mode> ...` (prints JSON)."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import redis

    from apps.resilience.backends.redis import RedisBackend
    from apps.resilience.machine import BreakerConfig
    from apps.resilience.runtime import Breaker, Registry

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)
    registry = Registry(backend=RedisBackend(client=client))
    return client, registry, Breaker, BreakerConfig


def probe(name: str, attempts: int, probes: int, start_key: str) -> None:
    """Wait for the start signal, then ask for probe tickets `attempts` times; print how many were granted."""
    client, registry, Breaker, BreakerConfig = _setup()
    from apps.resilience.errors import BreakerOpen

    registry.background = False
    config = BreakerConfig(name=name, minimum_calls=1, open_duration_s=1.0, half_open_probes=probes)
    breaker = Breaker(tenant_id=0, config=config, registry=registry)
    breaker.state = "open"  # this process last saw it open: every call asks the store for a ticket
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while not client.exists(start_key):
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.001)
    granted = 0
    for _ in range(attempts):
        breaker.probe_denied_until = 0.0
        breaker.state = "open" if breaker.state == "closed" else breaker.state
        with contextlib.suppress(BreakerOpen):
            granted += breaker.acquire().probe
    print(json.dumps({"granted": granted}), flush=True)


def follow(name: str, seconds: float) -> None:
    """Call through the breaker with the background flusher on; print when the first refusal came."""
    from apps.resilience.errors import BreakerOpen

    client, registry, Breaker, BreakerConfig = _setup()
    config = BreakerConfig(name=name, consecutive_failures=3, open_duration_s=30.0)
    breaker = Breaker(tenant_id=0, config=config, registry=registry)
    registry.breakers[(0, name)] = breaker
    registry._start()
    print("ready", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            permit = breaker.acquire()
        except BreakerOpen:
            print(json.dumps({"refused_at": time.time()}), flush=True)
            return
        breaker.record(permit, "success", duration_s=0.0)
        time.sleep(0.005)
    print(json.dumps({"refused_at": None}), flush=True)


def hold(name: str, held: int, tries: int, go_key: str, release_key: str) -> None:
    """Start `held` calls while healthy and keep them in flight; once gated, try `tries` more starts without
    waiting (print how many got a gate ticket); then let the held calls fail."""
    from apps.resilience.errors import BreakerOpen

    client, registry, Breaker, BreakerConfig = _setup()
    registry.background = False
    config = BreakerConfig(name=name, consecutive_failures=5, open_duration_s=30.0)
    breaker = registry.breakers[(0, name)] = Breaker(tenant_id=0, config=config, registry=registry)
    registry.start_listener()
    permits = [breaker.acquire() for _ in range(held)]
    time.sleep(0.3)  # the listener subscribes
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while not (client.exists(go_key) and breaker.gated):  # the gate reaches this process by its push
        if time.monotonic() > deadline:
            sys.exit("never gated")
        time.sleep(0.001)
    granted = 0
    for _ in range(tries):
        with contextlib.suppress(BreakerOpen):
            granted += breaker.acquire(wait=False).gate is not None
    print(json.dumps({"granted": granted}), flush=True)
    while not client.exists(release_key):
        if time.monotonic() > deadline:
            sys.exit("no release signal")
        time.sleep(0.001)
    for permit in permits:
        breaker.record(permit, "failure", duration_s=0.01)
    registry.stop()
    print(json.dumps({"granted": granted, "state": breaker.state}), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "probe":
        probe(args[0], int(args[1]), int(args[2]), args[3])
    elif mode == "follow":
        follow(args[0], float(args[1]))
    elif mode == "hold":
        hold(args[0], int(args[1]), int(args[2]), args[3], args[4])
