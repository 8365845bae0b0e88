"""Stampede: 200 concurrent requests for a cold key over 2 server processes, against a view that takes 200 ms.

Prints the origin calls and p99 latency through Bulwark (aim: 1 call) beside Django's cache_page on the
same Redis (expected: about one call per request). Two rounds in alternating order, each on a new cold
key, after a warm-up burst, because the shared machine is noisy. Run:
    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/caching_stampede.py
"""
from __future__ import annotations

import os

from caching_common import fire, origin_calls, percentile, prepare, warm_servers

PORTS = [18540, 18541]
REQUESTS = 200


def main() -> None:
    from tests.caching.servers import servers

    _, token = prepare([{"name": "slow", "path_pattern": "^/bench/slow/", "ttl_s": 300, "vary_on": "tenant"}])
    headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}
    scenarios = {
        "Bulwark": lambda r: (f"/bench/slow/bulwark-{r}/?ms=200", f"bulwark-{r}"),
        "cache_page": lambda r: (f"/bench/cache-page/slow/cachepage-{r}/?ms=200", f"cachepage-{r}"),
    }
    results: dict[str, list[tuple[int, float, float]]] = {name: [] for name in scenarios}
    with servers(PORTS, database_url=os.environ["DATABASE_URL"],
                 settings_module="benchmarks.caching_settings") as urls:
        warm_servers(urls, headers)
        fire(urls, "/bench/slow/warmup/?ms=0", headers, REQUESTS)  # server threads and sockets, both alike
        for round_no, order in enumerate([("Bulwark", "cache_page"), ("cache_page", "Bulwark")]):
            for name in order:
                path, counter = scenarios[name](round_no)
                latencies, statuses = fire(urls, path, headers, REQUESTS)
                assert all(s == 200 for s in statuses), statuses
                results[name].append((origin_calls(counter), percentile(latencies, 0.5),
                                      percentile(latencies, 0.99)))
    print(f"stampede: {REQUESTS} concurrent requests for a cold key, 2 server processes, 200 ms view, same Redis")
    for name, rounds in results.items():
        cells = "   ".join(f"origin calls {c:3d}  p50 {p50:5.0f} ms  p99 {p99:5.0f} ms" for c, p50, p99 in rounds)
        print(f"  {name:<10} {cells}")
    b_calls = sum(c for c, _, _ in results["Bulwark"])
    c_calls = sum(c for c, _, _ in results["cache_page"])
    b_p99 = max(p for _, _, p in results["Bulwark"])
    c_p99 = max(p for _, _, p in results["cache_page"])
    print(f"  origin calls over both rounds: Bulwark {b_calls}, cache_page {c_calls}"
          f" ({c_calls / max(b_calls, 1):.0f}x);  worst p99 Bulwark / cache_page: {b_p99 / c_p99:.2f}")


if __name__ == "__main__":
    main()
