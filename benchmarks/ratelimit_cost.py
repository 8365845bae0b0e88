"""Cost on the hot path: a trivial DRF endpoint behind the full middleware stack with Bulwark's rate-limit
middleware (one policy matching, decided on Redis) vs the same stack without it, measured side by side in
alternating rounds with wrk; then the check API's requests/s.

Run:  DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/ratelimit_cost.py   (needs `wrk`)
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ratelimit_harness import (  # noqa: E402
    bench_tenant,
    disable_other_policies,
    port,
    put_policy,
    servers,
    setup_django,
)

PORT_WITH, PORT_WITHOUT = port(41), port(42)
ROUNDS, ROUND_S, CONNECTIONS = 5, 4, 32  # short alternating rounds: the machine is shared, medians resist noise


def wrk(url: str, *, script: str | None = None) -> float:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{ROUND_S}s", "--timeout", "5s"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=ROUND_S + 30, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx answers during the run, the measurement would be wrong:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (apt-get install wrk)")
    setup_django()
    from apps.tenancy.services import token_create

    tenant = bench_tenant()
    generous = {"key_kind": "ip", "algorithm": "gcra", "rate": 1_000_000, "period": "second", "burst": None,
                "mode": "enforce", "enabled": True}
    cost = put_policy(tenant=tenant, name="bench-cost", data={"match_kind": "route", "match_value": "bench-ping",
                                                              **generous})
    check = put_policy(tenant=tenant, name="bench-check", data={"match_kind": "named", "match_value": "", **generous})
    disable_other_policies(tenant=tenant, keep=[cost.pk, check.pk])
    _, token = token_create(tenant=tenant, name="bench-check", role="viewer")

    body = json.dumps({"descriptors": [{"policy": "bench-check", "key": "client-1"}]})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                  f'wrk.headers["Content-Type"] = "application/json"\n'
                  f'wrk.headers["Authorization"] = "Bearer {token}"\n')

    with_rl, without_rl = [], []
    with servers([PORT_WITH, PORT_WITHOUT], [{}, {"BENCH_RATELIMIT_MIDDLEWARE": "0"}]) as (base_with, base_without):
        wrk(f"{base_with}/bench/ping")  # warm-up: compile snapshots, load the script, fill pools
        for _ in range(ROUNDS):
            with_rl.append(wrk(f"{base_with}/bench/ping"))
            without_rl.append(wrk(f"{base_without}/bench/ping"))
        check_rps = wrk(f"{base_with}/api/v1/ratelimit/check/", script=lua.name)
    Path(lua.name).unlink()

    ratio = statistics.median(with_rl) / statistics.median(without_rl)
    # Each round's pair runs back to back, so its ratio cancels the load other users put on the machine.
    paired = statistics.median(w / wo for w, wo in zip(with_rl, without_rl, strict=True))
    print(f"trivial DRF endpoint, 1 uvicorn process each, wrk -t2 -c{CONNECTIONS}, {ROUNDS} alternating rounds of"
          f" {ROUND_S} s")
    print(f"  with the rate-limit middleware (Redis): {', '.join(f'{r:7.0f}' for r in with_rl)} req/s")
    print(f"  without it:                             {', '.join(f'{r:7.0f}' for r in without_rl)} req/s")
    print(f"  ratio, median of the paired rounds:     {paired:.1%}")
    print(f"  ratio, median with / median without:    {ratio:.1%}")
    print(f"check API (POST /api/v1/ratelimit/check/, bearer token, 1 descriptor): {check_rps:.0f} req/s")


if __name__ == "__main__":
    main()
