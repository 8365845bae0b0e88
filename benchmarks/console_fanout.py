"""Console fan-out: 200 WebSocket clients of one tenant on one uvicorn process receive published events.

Events are published from this process over channels-redis (as another web or worker process would), each
carrying the time it was sent; every client notes when it arrives. Printed: p50/p95/max delay from event to
client over all (client, event) pairs, the share delivered, and the server's CPU while it fanned out.
The delay includes the console's deliberate throttle (at most one message per second per client,
`MIN_SEND_INTERVAL_S`): an event waits up to that long for its socket's next send. Aim: p95 < 2 s.

    DATABASE_URL=... REDIS_URL=... BULWARK_PORT_BASE=... .venv/bin/python benchmarks/console_fanout.py [--clients 200]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ratelimit_harness import ROOT, _wait, port, setup_django  # noqa: E402

TENANT_SLUG = "bench-console"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


async def client(url: str, headers: list, arrivals: dict, ready: asyncio.Event, counter: list, total: int,
                 stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(url, additional_headers=headers, max_size=2**22) as socket:
        await socket.recv()  # the first message: the whole state
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            for item in json.loads(raw)["data"].get("events", {}).values():
                sent_at = (item.get("data") or {}).get("sent_at")
                if sent_at is not None:
                    arrivals.setdefault(item["data"]["id"], []).append(now - sent_at)


async def run(clients: int, events: int, interval_s: float, url: str, headers: list, tenant_id: int,
              server_pid: int) -> None:
    import psutil
    from channels.layers import get_channel_layer

    from apps.core.live import console_group

    arrivals: dict[int, list[float]] = {}
    ready, stop = asyncio.Event(), asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(client(url, headers, arrivals, ready, counter, clients, stop)) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), timeout=120)
    print(f"{clients} clients connected and got their first state")
    layer = get_channel_layer()
    server = psutil.Process(server_pid)
    cpu_before, wall_before = sum(server.cpu_times()[:2]), time.monotonic()
    for n in range(events):
        message = {"type": "console.event", "event": "bench.tick", "tenant": tenant_id,
                   "data": {"id": n, "sent_at": time.time()}}
        await layer.group_send(console_group(tenant_id), message)
        await asyncio.sleep(interval_s)
    await asyncio.sleep(3.0)  # the last events' sends
    cpu_s, wall_s = sum(server.cpu_times()[:2]) - cpu_before, time.monotonic() - wall_before
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays = [d for per_event in arrivals.values() for d in per_event]
    expected = clients * events
    print(f"events published: {events} (one per {interval_s:g} s) to {clients} clients; delivered {len(delays)} of "
          f"{expected} ({100.0 * len(delays) / expected:.1f} %)")
    if delays:
        print(f"delay event -> client: p50 {percentile(delays, 0.50) * 1000:.0f} ms, p95 "
              f"{percentile(delays, 0.95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms, mean "
              f"{statistics.fmean(delays) * 1000:.0f} ms (aim: p95 < 2000 ms)")
    print(f"server CPU while fanning out: {cpu_s:.2f} s over {wall_s:.1f} s = {100.0 * cpu_s / wall_s:.1f} % of one core "
          f"({1000.0 * cpu_s / max(1, len(delays)):.2f} ms per delivered event)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--interval-s", type=float, default=0.5)
    args = parser.parse_args()
    setup_django()
    from apps.tenancy.models import Tenant
    from apps.tenancy.services import token_create

    tenant = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": "Console benchmark"})[0]
    _, secret = token_create(tenant=tenant, name=f"bench-{int(time.time())}", role="viewer")
    listen = port(81)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(listen),
         "--log-level", "error", "--no-access-log", "--lifespan", "off", "--ws-max-queue", "4"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(listen, server)
        headers = [("Authorization", f"Bearer {secret}"), ("Origin", f"http://127.0.0.1:{listen}")]
        asyncio.run(run(args.clients, args.events, args.interval_s, f"ws://127.0.0.1:{listen}/ws/console/", headers,
                        tenant.pk, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
