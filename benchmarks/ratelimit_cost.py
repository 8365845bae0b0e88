"""Cost on the hot path: a trivial DRF endpoint behind the full middleware stack with Bulwark's rate-limit
middleware (one policy matching, decided on Redis) vs the same stack without it, measured side by side in
alternating rounds with wrk; then the check API's requests/s. Beside throughput it prints the server process's CPU
time per request (psutil), which a shared machine disturbs far less than requests/s.

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

import psutil

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


def listening_process(base_url: str) -> psutil.Process:
    port_number = int(base_url.rsplit(":", 1)[1])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port_number and connection.status == psutil.CONN_LISTEN:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on {base_url}")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measured_round(base_url: str, process: psutil.Process) -> tuple[float, float]:
    """Requests/s and server CPU microseconds per request of one wrk round."""
    before = cpu_seconds(process)
    rps, requests = wrk(f"{base_url}/bench/ping", with_count=True)
    return rps, (cpu_seconds(process) - before) / requests * 1e6


def wrk(url: str, *, script: str | None = None, with_count: bool = False):
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{ROUND_S}s", "--timeout", "5s"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=ROUND_S + 30, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx answers during the run, the measurement would be wrong:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    if with_count:
        return rps, int(re.search(r"(\d+) requests in", output).group(1))
    return rps


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

    with_rl, without_rl, cpu_with, cpu_without = [], [], [], []
    with servers([PORT_WITH, PORT_WITHOUT], [{}, {"BENCH_RATELIMIT_MIDDLEWARE": "0"}]) as (base_with, base_without):
        process_with, process_without = listening_process(base_with), listening_process(base_without)
        for base in (base_with, base_without):
            wrk(f"{base}/bench/ping")  # warm-up: compile snapshots, load the script, fill pools
        for _ in range(ROUNDS):
            rps, cpu = measured_round(base_with, process_with)
            with_rl.append(rps)
            cpu_with.append(cpu)
            rps, cpu = measured_round(base_without, process_without)
            without_rl.append(rps)
            cpu_without.append(cpu)
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
    print(f"  server CPU per request, with:    {', '.join(f'{c:7.0f}' for c in cpu_with)} µs")
    print(f"  server CPU per request, without: {', '.join(f'{c:7.0f}' for c in cpu_without)} µs")
    cpu_ratio = statistics.median(cpu_without) / statistics.median(cpu_with)
    print(f"  CPU ratio (requests per CPU-second, with / without): {cpu_ratio:.1%}   (aim >= 90%)")
    print(f"check API (POST /api/v1/ratelimit/check/, bearer token, 1 descriptor): {check_rps:.0f} req/s")


if __name__ == "__main__":
    main()
