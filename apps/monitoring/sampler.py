"""System, store and worker figures (psutil, PostgreSQL, Redis INFO, the jobs app), and each process's RSS.

`take_sample()` reads everything once and returns the figures; services store them. `ProcessSink` is a
stats-pipeline sink: at every flush it writes this process's RSS and its change since the previous flush
to the store, so the sampler sees every web and worker process of every host ("memory delta").
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

import psutil
from django.conf import settings
from django.db import connection

HOST = socket.gethostname()
PROCESS_STALE_S = 120


def _procs_key() -> str:
    from apps.core.store import store_key

    return store_key("monitoring", "procs")


def _process_kind() -> str:
    argv = " ".join(sys.argv[:3])
    if "qcluster" in argv:
        return "worker"
    if any(word in argv for word in ("uvicorn", "gunicorn", "daphne", "runserver", "serve")):
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


def processes(now: float | None = None) -> list[dict]:
    """Processes that reported within PROCESS_STALE_S (others are pruned)."""
    from apps.core.store import redis_client

    now = time.time() if now is None else now
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
    from django.db.models import Count, Min
    from django.utils import timezone

    from apps.jobs.models import JobRun
    from apps.jobs.selectors import live_workers

    waiting = JobRun.objects.filter(status__in=(JobRun.Status.QUEUED, JobRun.Status.RETRYING)).aggregate(
        depth=Count("pk"), oldest=Min("queued_at"))
    oldest = waiting["oldest"]
    return {"queue_depth": waiting["depth"],
            "oldest_age_s": (timezone.now() - oldest).total_seconds() if oldest else None, **live_workers()}


def take_sample(*, cpu_interval_s: float = 0.5) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disk = psutil.disk_usage(str(getattr(settings, "VAR_DIR", "/")))
    disk_io = psutil.disk_io_counters()
    net_io = psutil.net_io_counters()
    figures: dict[str, Any] = {
        "cpu_percent": psutil.cpu_percent(interval=cpu_interval_s),
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
