"""Hit path: requests per second of a cached DRF endpoint through Bulwark beside Django's cache_page, same Redis.

Both run in this process through the whole middleware stack (WSGI handler, token resolution, tenant),
alternating rounds so drift of the shared machine hits both alike. Run:
    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/caching_hit.py
"""
from __future__ import annotations

import time

from caching_common import prepare

ROUND_S = 3.0
ROUNDS = 3


def rps(client, path: str, headers: dict) -> float:
    client.get(path, **headers)  # warm: the first request stores
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < ROUND_S:
        response = client.get(path, **headers)
        assert response.status_code == 200, response.status_code
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    from django.test import Client

    _, token = prepare([{"name": "items", "path_pattern": "^/bench/bulwark/items/", "ttl_s": 300,
                         "vary_on": "tenant", "stale_while_revalidate_s": 30}])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT": "application/json"}
    client = Client()
    status = client.get("/bench/bulwark/items/", **headers)
    status = client.get("/bench/bulwark/items/", **headers)
    assert status["Cache-Status"].startswith("Bulwark; hit"), status.get("Cache-Status")
    bulwark, cache_page = [], []
    for _ in range(ROUNDS):
        bulwark.append(rps(client, "/bench/bulwark/items/", headers))
        cache_page.append(rps(client, "/bench/cache-page/items/", headers))
    best_b, best_c = max(bulwark), max(cache_page)
    print(f"hit path, {ROUNDS} alternating rounds of {ROUND_S:.0f} s, best round each, one process, same Redis")
    print(f"  Bulwark (policy, tenant key, tags, ETag, Cache-Status, stats): {best_b:8.0f} req/s")
    print(f"  Django cache_page:                                           {best_c:8.0f} req/s")
    print(f"  ratio Bulwark / cache_page: {best_b / best_c:.2f}  (aim >= 0.90)")


if __name__ == "__main__":
    main()
