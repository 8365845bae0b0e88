"""Alerting latency: from a metric crossing its threshold (real requests through monitoring, authenticated
with an API token) to the webhook receiver getting the notification.

A uvicorn server takes the requests, a qcluster delivers, the evaluation loop runs every `--every-s`; an
error-rate rule with `for: --for-s` watches the endpoint. At t0 the traffic turns 50 % failing. Aim:
latency ≤ for + one evaluation interval + 2 s; printed side by side with that bound and as a ratio.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/alerting_latency.py [--for-s 60 --every-s 15]
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.alerting_settings"


def setup() -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmarks run on PostgreSQL and Redis")
    os.environ.update(DJANGO_SETTINGS_MODULE=SETTINGS, DEBUG="0", SECURE_SSL_REDIRECT="0",
                      SECRET_KEY=os.environ.get("SECRET_KEY", "benchmark-only-secret-key-not-for-production-0123456789"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def traffic(base: str, token: str, failing: threading.Event, stop: threading.Event) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
        i = 0
        while not stop.is_set():
            fail = failing.is_set() and i % 2 == 0
            client.get(f"{base}/bench/flaky", params={"fail": "1" if fail else "0"})
            i += 1
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--for-s", type=int, default=15)
    parser.add_argument("--every-s", type=int, default=5)
    args = parser.parse_args()
    setup()

    from apps.alerting import services
    from apps.alerting.evaluation import evaluate_all
    from apps.alerting.models import Alert, AlertEvent, AlertRule, Channel
    from apps.tenancy.models import Tenant
    from apps.tenancy.services import token_create
    from benchmarks.ratelimit_harness import port, servers
    from tests.alerting.receivers import HttpReceiver

    tenant, _ = Tenant.objects.get_or_create(slug="bench-alerting", defaults={"name": "alerting latency"})
    for rule in AlertRule.objects.for_tenant(tenant):
        services.rule_delete(rule=rule)
    for channel in Channel.objects.for_tenant(tenant):
        services.channel_delete(channel=channel)
    receiver = HttpReceiver(port(61)).start()
    channel = services.channel_create(tenant=tenant, data={"name": "bench hook", "kind": "webhook",
                                                           "config": {"url": receiver.url + "/hook"}})
    services.rule_create(tenant=tenant, data={
        "name": "bench errors", "metric": "endpoint_error_rate", "matchers": {"route": "bench/flaky"},
        "warning": 0.2, "critical": None, "for_s": args.for_s, "window_s": 60, "group_wait_s": 0,
        "channels": [channel]})
    _, token = token_create(tenant=tenant, name="bench-alerting", role="admin")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS}
    qcluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    failing, stop = threading.Event(), threading.Event()
    try:
        with servers([port(60)], extra_env=[{"DJANGO_SETTINGS_MODULE": SETTINGS}]) as (base,):
            sender = threading.Thread(target=traffic, args=(base, token, failing, stop), daemon=True)
            sender.start()
            time.sleep(3)  # healthy traffic first
            failing.set()
            t0 = time.monotonic()
            deadline = t0 + args.for_s + args.every_s * 4 + 30
            # Cycles run on the ticks of wall time, stamped as of their tick, as the alerting.evaluate job's do
            # (apps.alerting.jobs.evaluation_ticks); polled here so that the webhook's arrival is seen at once.
            next_tick = math.ceil(time.time() / args.every_s) * args.every_s
            fired_at = None
            while not receiver.on("/hook") and time.monotonic() < deadline:
                if time.time() >= next_tick:
                    evaluate_all(now=datetime.fromtimestamp(next_tick, tz=UTC))
                    next_tick += args.every_s
                    if fired_at is None and Alert.objects.for_tenant(tenant).filter(state="firing").exists():
                        fired_at = time.monotonic()
                time.sleep(0.05)
            received = time.monotonic() if receiver.on("/hook") else None
            stop.set()
            sender.join(timeout=10)
    finally:
        stop.set()
        os.killpg(qcluster.pid, signal.SIGTERM)
        qcluster.wait(timeout=20)
        receiver.stop()
    aim = args.for_s + args.every_s + 2
    wall_t0 = time.time() - (time.monotonic() - t0)
    for event in AlertEvent.objects.for_tenant(tenant).order_by("at", "pk"):
        print(f"  t0 + {event.at.timestamp() - wall_t0:6.1f} s  {event.from_state} -> {event.to_state}  "
              f"value {event.value}")
    print(f"alerting latency: for={args.for_s}s, evaluation every {args.every_s}s, stats flush 1s "
          f"(measured on a shared, loaded machine)")
    if received is None:
        print("no notification received before the deadline")
        sys.exit(1)
    latency = received - t0
    body = receiver.on("/hook")[0].json()
    print(f"alert firing after        {fired_at - t0:7.2f} s" if fired_at else "alert firing: not seen")
    print(f"webhook received after    {latency:7.2f} s   (status {body['status']}, "
          f"{body['alerts'][0]['labels'].get('route')})")
    print(f"aim (for + interval + 2s) {aim:7.2f} s")
    print(f"latency / aim             {latency / aim:7.2f}")


if __name__ == "__main__":
    main()
