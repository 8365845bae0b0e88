"""Bounded load tests with httpx async: a fixed concurrency or rate for a duration, or step-up until p95
crosses a threshold. Targets must be on the allowlist (default: this server only, on loopback)."""
from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from apps.optimization.analysis import percentile
from apps.optimization.conf import optimization_settings as conf

LOOPBACK_NAMES = {"localhost"}


def target_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    allowed = conf.LOADTEST_ALLOWED_HOSTS
    if not allowed:
        if parts.hostname in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            return False
    host_port = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    return parts.hostname in allowed or host_port in allowed


async def _step(client: httpx.AsyncClient, *, urls: list[str], method: str, concurrency: int, rate: float | None,
                duration_s: float, rng: random.Random) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration_s
    interval = concurrency / rate if rate else 0.0  # each worker's pace so that together they make `rate`

    async def worker() -> None:
        nonlocal errors
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                response = await client.request(method, rng.choice(urls))
                if response.status_code >= 500:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - start) * 1000)
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    requests = len(latencies)
    return {"concurrency": concurrency, "rate": rate, "requests": requests, "errors": errors,
            "throughput_rps": round(requests / elapsed, 2) if elapsed else 0.0,
            "p50_ms": round(percentile(latencies, 0.5), 2), "p95_ms": round(percentile(latencies, 0.95), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "error_rate": round(errors / requests, 4) if requests else 0.0}


async def run(*, target: str, paths: list[str], method: str, levels: list[int], rate: float | None,
              step_duration_s: float, p95_threshold_ms: float | None, headers: dict[str, str],
              progress: Callable[[int, str], None], timeout_s: float = 10.0, seed: int | None = None) -> dict:
    """One step per concurrency level (one level without step-up); stops after the first step whose p95
    crosses the threshold. Returns the steps and that knee (None when no step crossed it)."""
    urls = [target.rstrip("/") + "/" + path.lstrip("/") for path in paths]
    rng = random.Random(seed)
    steps, knee = [], None
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    async with httpx.AsyncClient(timeout=timeout_s, headers=headers, limits=limits) as client:
        for index, level in enumerate(levels):
            step = await _step(client, urls=urls, method=method, concurrency=level, rate=rate,
                               duration_s=step_duration_s, rng=rng)
            step["step"] = index + 1
            steps.append(step)
            progress(int(100 * (index + 1) / len(levels)),
                     f"step {index + 1}/{len(levels)}: {level} users, p95 {step['p95_ms']} ms")
            if p95_threshold_ms is not None and step["p95_ms"] > p95_threshold_ms:
                knee = step
                break
    return {"steps": steps, "knee": knee}
