"""System, store and worker figures (psutil, PostgreSQL, Redis INFO, the jobs app), and each process's RSS.

`take_sample()` reads everything once and returns the figures; services store them. Two stats-pipeline
sinks run at every flush of every process: `ProcessSink` writes this process's RSS and its change since the
previous flush to the store, so samples list every web and worker process of every host ("memory delta");
`HostSampler` offers the host's current `SAMPLE_EVERY_S` slot to `services.sample_take`, which samples once
per host and slot, whichever process claims it first.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

import psutil
from django.conf import settings
from django.db import connection

HOST = socket.gethostname()
PROCESS_STALE_S = 120


def _procs_key() -> str:
    from apps.core.store import store_key

    return store_key("monitoring", "procs")


_SERVERS = frozenset({"uvicorn", "gunicorn", "daphne", "runserver", "serve"})


def _process_kind() -> str:
    """`worker` (django-q2), `web` (a server), else the program's name: from the first words of argv, path
    parts included (`python -m uvicorn` runs `.../uvicorn/__main__.py`)."""
    names = {part.split(".")[0] for arg in sys.argv[:3] for part in arg.replace("\\", "/").split("/")}
    if "qcluster" in names:
        return "worker"
    if names & _SERVERS:
        return "web"
    return os.path.basename(sys.argv[0]) if sys.argv else "python"


_local_processes: dict[str, dict] = {}


class ProcessSink:
    def __init__(self) -> None:
        self._process = psutil.Process()
        self._last_rss: int | None = None

    def flush(self, now: float) -> None:
        rss = self._process.memory_info().rss
        delta = 0 if self._last_rss is None else rss - self._last_rss
        self._last_rss = rss
        entry = {"host": HOST, "pid": os.getpid(), "kind": _process_kind(), "rss": rss, "rss_delta": delta, "at": now}
        from apps.core.store import redis_client

        client = redis_client()
        if client is None:
            _local_processes[f"{HOST}:{os.getpid()}"] = entry
        else:
            client.hset(_procs_key(), f"{HOST}:{os.getpid()}", json.dumps(entry))


class HostSampler:
    """Ticked by the stats flusher: each process offers each slot of its host once; one of them samples.

    Only server processes (web and django-q2 workers) sample: a management command, a shell or a test run
    that happens to flush stats does not write samples. `active` forces the choice (tests).
    """

    def __init__(self, *, active: bool | None = None) -> None:
        self._last_slot: int | None = None
        self.active = active

    def flush(self, now: float) -> None:
        from apps.monitoring import services
        from apps.monitoring.conf import monitoring_settings

        if self.active is None:
            self.active = _process_kind() in ("web", "worker")
        if not self.active:
            return
        slot = int(now // float(monitoring_settings.SAMPLE_EVERY_S))
        if slot == self._last_slot:
            return
        self._last_slot = slot
        services.sample_take(host=HOST, now=now)


def processes(now: float | None = None) -> list[dict]:
    """Processes that reported within PROCESS_STALE_S (others are pruned)."""
    from apps.core.clock import SYSTEM_CLOCK
    from apps.core.store import redis_client

    now = SYSTEM_CLOCK.time() if now is None else now
    client = redis_client()
    if client is None:
        entries = dict(_local_processes)
    else:
        entries = {k.decode(): json.loads(v) for k, v in client.hgetall(_procs_key()).items()}
    stale = [name for name, e in entries.items() if now - e["at"] > PROCESS_STALE_S]
    if stale and client is not None:
        client.hdel(_procs_key(), *stale)
    return sorted((e for name, e in entries.items() if name not in stale), key=lambda e: (e["host"], e["pid"]))


def _postgres() -> dict[str, Any] | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT numbackends, xact_commit, xact_rollback, blks_hit, blks_read, pg_database_size(datname) "
            "FROM pg_stat_database WHERE datname = current_database()")
        backends, commits, rollbacks, hits, reads, size = cursor.fetchone()
        figures: dict[str, Any] = {
            "connections": backends, "xact_commit": commits, "xact_rollback": rollbacks,
            "cache_hit_ratio": hits / (hits + reads) if hits + reads else None, "database_bytes": size,
            "statements": None,
        }
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if cursor.fetchone():
            try:
                cursor.execute(
                    "SELECT left(query, 300), calls, total_exec_time, mean_exec_time, rows FROM pg_stat_statements "
                    "ORDER BY total_exec_time DESC LIMIT 10")
                figures["statements"] = [
                    {"query": q, "calls": c, "total_ms": t, "mean_ms": m, "rows": r} for q, c, t, m, r in cursor.fetchall()
                ]
            except Exception:  # extension created but not preloaded: it raises until the server restarts
                figures["statements"] = None
    return figures


def _redis() -> dict[str, Any] | None:
    from apps.core.store import redis_client

    client = redis_client()
    if client is None:
        return None
    info = client.info()
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    return {
        "used_memory": info.get("used_memory"), "ops_per_sec": info.get("instantaneous_ops_per_sec"),
        "hit_ratio": hits / (hits + misses) if hits + misses else None,
        "connected_clients": info.get("connected_clients"), "evicted_keys": info.get("evicted_keys"),
    }


def _jobs() -> dict[str, Any]:
    from apps.jobs.selectors import live_workers, queue_depth

    waiting = queue_depth()
    return {"queue_depth": waiting["depth"], "oldest_age_s": waiting["oldest_age_s"], **live_workers()}


def _cpu(previous: dict | None) -> tuple[float, dict[str, float]]:
    """CPU % of the host since `previous` (the CPU times kept by its previous sample) and the times now."""
    times = psutil.cpu_times()
    total = sum(times)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    now = {"busy": busy, "total": total}
    if previous and total > previous.get("total", total):
        return max(0.0, min(100.0, 100 * (busy - previous["busy"]) / (total - previous["total"]))), now
    return psutil.cpu_percent(interval=0.1), now  # the host's first sample: measure over a short interval


def take_sample(*, previous_cpu: dict | None = None) -> dict[str, Any]:
    cpu_percent, cpu_times = _cpu(previous_cpu)
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disk = psutil.disk_usage(str(getattr(settings, "VAR_DIR", "/")))
    disk_io = psutil.disk_io_counters()
    net_io = psutil.net_io_counters()
    figures: dict[str, Any] = {
        "cpu_percent": cpu_percent,
        "cpu_times": cpu_times,
        "memory_percent": memory.percent,
        "disk_percent": disk.percent,
        "load": list(os.getloadavg()),
        "memory_available_bytes": memory.available,
        "swap_percent": swap.percent,
        "disk_io": {"read_bytes": disk_io.read_bytes, "write_bytes": disk_io.write_bytes} if disk_io else None,
        "net_io": {"bytes_sent": net_io.bytes_sent, "bytes_recv": net_io.bytes_recv} if net_io else None,
        "processes": processes(),
    }
    for name, read in (("postgres", _postgres), ("redis", _redis), ("jobs", _jobs)):
        try:
            figures[name] = read()
        except Exception as exc:
            figures[name] = {"error": f"{exc.__class__.__name__}: {exc}"[:200]}
    return figures
