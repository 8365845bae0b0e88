"""Outage containment: 4 processes x 8 threads call a dependency that fails for 10 s and then recovers.
Bulwark's breaker shared through Redis beside per-process pybreaker breakers with the same thresholds
(5 failures in a row, 3 s open, 1 success to close). Prints how many calls reached the dependency while it
was failing, how many of them started after the first failure had returned in any process (the calls a
perfectly shared breaker could have stopped, beyond fail_max), and how long after its recovery every process
was calling it successfully again.

Run:  DATABASE_URL=... REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python benchmarks/resilience_outage.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

PROCESSES, THREADS = 4, 8
HEALTHY_S, FAILING_S, AFTER_S = 1.0, 10.0, 5.0
CALL_S = 0.002  # the dependency's own latency
FAIL_MAX, OPEN_S = 5, 3.0  # an open time that does not divide the outage, so neither side is lucky


def make_call(variant: str, name: str):
    """A function calling the dependency through the variant's breaker; raises when refused or failing."""
    if variant == "pybreaker":
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=FAIL_MAX, reset_timeout=OPEN_S, success_threshold=1)
        return breaker.call, (pybreaker.CircuitBreakerError,)
    import django

    django.setup()
    from apps.resilience.errors import BreakerOpen
    from apps.resilience.machine import BreakerConfig
    from apps.resilience.runtime import Breaker, registry

    config = BreakerConfig(name=name, consecutive_failures=FAIL_MAX, open_duration_s=OPEN_S, half_open_probes=1)
    breaker = registry.breakers[(0, name)] = Breaker(tenant_id=0, config=config, registry=registry)
    registry._start()

    def call(fn):
        permit = breaker.acquire()
        try:
            result = fn()
        except BaseException as exc:
            breaker.record(permit, config.classify(exc))
            raise
        breaker.record(permit, "success")
        return result

    return call, (BreakerOpen,)


def worker(variant: str, name: str) -> None:
    call, refusals = make_call(variant, name)
    print("ready", flush=True)
    start = float(sys.stdin.readline())  # once every process is set up, whatever the machine's load
    fail_from, fail_until, end = start + HEALTHY_S, start + HEALTHY_S + FAILING_S, start + HEALTHY_S + FAILING_S + AFTER_S
    lock = threading.Lock()
    stats = {"calls": 0, "succeeded": 0, "reached_failing": 0, "reached_after_first_s": 0, "refused": 0, "last_failure_after_recovery": None,
             "first_success_after_recovery": None, "first_failure_returned": None, "failing_starts": []}

    def dependency():
        started = time.time()
        time.sleep(CALL_S)
        now = time.time()
        if fail_from <= now < fail_until:
            with lock:
                stats["reached_failing"] += 1
                stats["reached_after_first_s"] += now >= fail_from + 1.0  # half-open probes, not the first burst
                if now < fail_from + 1.0:  # the first burst: when did each call start
                    stats["failing_starts"].append(started)
            raise ConnectionError("dependency down")
        return now

    def run():
        while time.time() < end:
            try:
                finished = call(dependency)
            except refusals:
                with lock:
                    stats["refused"] += 1
                time.sleep(CALL_S)  # a refused caller moves on to other work
                continue
            except ConnectionError:
                with lock:
                    if stats["first_failure_returned"] is None:
                        stats["first_failure_returned"] = time.time()
                continue
            finally:
                with lock:
                    stats["calls"] += 1
            with lock:
                stats["succeeded"] += 1
            if finished >= fail_until:
                with lock:
                    if stats["first_success_after_recovery"] is None:
                        stats["first_success_after_recovery"] = finished

    while time.time() < start:
        time.sleep(0.001)
    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats["recovery_s"] = (
        stats["first_success_after_recovery"] - fail_until if stats["first_success_after_recovery"] else None
    )
    print(json.dumps(stats), flush=True)


def run_variant(variant: str) -> list[dict]:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    processes = [
        subprocess.Popen([sys.executable, __file__, "worker", variant, name], cwd=ROOT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    results = []
    try:
        for process in processes:
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"{variant} worker failed to start:\n{process.stderr.read()}")
        start = time.time() + 0.5
        for process in processes:
            process.stdin.write(f"{start!r}\n")
            process.stdin.flush()
        for process in processes:
            out, err = process.communicate(timeout=HEALTHY_S + FAILING_S + AFTER_S + 30)
            if process.returncode != 0:
                raise RuntimeError(f"{variant} worker failed:\n{err}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3])
        return
    if not os.environ.get("REDIS_URL"):
        sys.exit("needs REDIS_URL: Bulwark's breaker is shared through Redis")
    print(f"{PROCESSES} processes x {THREADS} threads; dependency ({CALL_S * 1000:g} ms per call) fails for "
          f"{FAILING_S:g} s; breakers open after {FAIL_MAX} failures in a row for {OPEN_S:g} s")
    summary = {}
    for variant, label in (("bulwark", "Bulwark, shared breaker (Redis)"),
                           ("pybreaker", "pybreaker, one breaker per process")):
        results = run_variant(variant)
        returned = [r["first_failure_returned"] for r in results if r["first_failure_returned"]]
        if not returned:
            sys.exit(f"{label}: no call failed (the processes started too late?): {results}")
        first_failure = min(returned)
        after = [sum(start > first_failure for start in r["failing_starts"]) for r in results]
        reached = sum(r["reached_failing"] for r in results)
        probes = sum(r["reached_after_first_s"] for r in results)
        recoveries = [r["recovery_s"] for r in results]
        recovery = max(recoveries) if all(r is not None for r in recoveries) else None
        succeeded = sum(r["succeeded"] for r in results)
        summary[variant] = (reached, recovery)
        print(f"  {label:36s} calls reaching the failing dependency: {reached:5d} "
              f"(after its first second: {probes:3d})   "
              f"recovery (all processes): {recovery if recovery is None else f'{recovery:.2f} s'}   "
              f"successful calls: {succeeded}")
        print(f"  {'':36s} calls started after the first failure returned anywhere: {sum(after):3d} "
              f"(per process: {', '.join(map(str, after))}; the floor is fail_max {FAIL_MAX} + 1 probe)")
    (b_reached, b_recovery), (p_reached, p_recovery) = summary["bulwark"], summary["pybreaker"]
    print("  (pybreaker holds its lock during every call, so each process makes one call at a time:"
          " fewer calls in flight when the outage starts, and fewer successful calls overall)")
    print("ratios")
    print(f"  calls reaching the failing dependency, pybreaker / Bulwark: {p_reached / max(b_reached, 1):.1f}x")
    if b_recovery is not None and p_recovery is not None:
        print(f"  recovery time, Bulwark - pybreaker: {b_recovery - p_recovery:+.2f} s")


if __name__ == "__main__":
    main()
