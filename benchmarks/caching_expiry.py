"""Expiry under load: p99 latency across TTL expiries with stale-while-revalidate on, beside the same run off.

10 client threads loop for 6 s against 2 server processes; the entry lives 2 s and the view takes 200 ms,
so each run crosses two or three expiries. With SWR off, requests at expiry wait for the one origin call;
with SWR on, they are served stale at once. Run:
    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/caching_expiry.py
"""
from __future__ import annotations

import os
import threading
import time

from caching_common import origin_calls, percentile, prepare, warm_servers

PORTS = [18542, 18543]
CLIENTS = 10
RUN_S = 6.0
SLOW_MS = 200  # as long as the origin: a request that waited for it


def load(urls: list[str], path: str, headers: dict) -> list[float]:
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + RUN_S
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS))

    def loop(i: int) -> None:
        mine = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            response = client.get(urls[i % len(urls)] + path, headers=headers)
            assert response.status_code == 200, response.status_code
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CLIENTS)]
    with client:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(RUN_S + 60)
    return latencies


def main() -> None:
    import httpx

    from tests.caching.servers import servers

    _, token = prepare([
        {"name": "swr-on", "path_pattern": "^/bench/slow/swr-on", "ttl_s": 2, "stale_while_revalidate_s": 30,
         "vary_on": "tenant"},
        {"name": "swr-off", "path_pattern": "^/bench/slow/swr-off", "ttl_s": 2, "vary_on": "tenant"},
    ])
    headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}
    rows = []
    with servers(PORTS, database_url=os.environ["DATABASE_URL"],
                 settings_module="benchmarks.caching_settings") as urls:
        warm_servers(urls, headers)
        for name in ("swr-on", "swr-off"):
            httpx.get(f"{urls[0]}/bench/slow/{name}/?ms=200", headers=headers, timeout=30)  # not a cold start
            latencies = load(urls, f"/bench/slow/{name}/?ms=200", headers)
            rows.append((name, len(latencies), origin_calls(name), percentile(latencies, 0.5),
                         percentile(latencies, 0.99), percentile(latencies, 0.999), max(latencies),
                         sum(1 for ms in latencies if ms >= SLOW_MS)))
    print(f"expiry under load: {CLIENTS} clients for {RUN_S:.0f} s, TTL 2 s, 200 ms view, 2 server processes")
    print("  (origin calls include the one that stored the entry before the run)")
    for name, n, calls, p50, p99, p999, worst, slow in rows:
        print(f"  SWR {name[4:]:<3}  requests {n:5d}  origin calls {calls:2d}  p50 {p50:4.0f} ms  p99 {p99:4.0f} ms"
              f"  p99.9 {p999:4.0f} ms  max {worst:4.0f} ms  requests >= {SLOW_MS} ms: {slow}")
    on, off = rows
    print(f"  ratio SWR on / off: p99 {on[4] / off[4]:.2f}, p99.9 {on[5] / off[5]:.2f}, max {on[6] / off[6]:.2f}")


if __name__ == "__main__":
    main()
