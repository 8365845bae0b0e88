"""Route-level diagnosis: per (tenant, route, method), the sampled requests of a window judged by kind.

Each detector needs `MIN_SAMPLES` requests and a pattern that holds in most of them (one odd request
proves nothing), and returns at most one finding per root cause; `merge_root_causes` then folds symptoms
into their cause (identical statements inside an N+1 loop, CPU spent serialising an unbounded list).
"""
from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from apps.optimization import pgstats, plans
from apps.optimization.conf import optimization_settings as conf
from apps.optimization.findings import Candidate, fold
from apps.optimization.fingerprint import normalise

_TABLE = re.compile(r'\bFROM\s+"?(\w+)"?', re.IGNORECASE)
CODE_KINDS = ("n_plus_one", "repeated_query", "missing_index", "unindexable_search", "unindexed_sort",
              "unbounded_result", "dependency_without_timeout", "dependency_failing_without_breaker")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def table_of(sql: str) -> str:
    match = _TABLE.search(sql)
    return match.group(1) if match else "?"


@dataclass
class RouteEvidence:
    tenant_id: int | None
    route: str
    method: str
    samples: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.samples)

    def figures(self) -> dict:
        walls = [s.wall_ms for s in self.samples]
        return {"samples": self.n, "p50_ms": round(percentile(walls, 0.5), 2), "p95_ms": round(percentile(walls, 0.95), 2),
                "cpu_ms_median": round(statistics.median(s.cpu_ms for s in self.samples), 2),
                "db_ms_median": round(statistics.median(s.db_ms for s in self.samples), 2),
                "error_rate": round(sum(s.status >= 500 for s in self.samples) / self.n, 4)}

    def shapes(self) -> dict[str, list[dict]]:
        """Per SQL fingerprint, its entry in every sample that ran it."""
        by_fp: dict[str, list[dict]] = defaultdict(list)
        for sample in self.samples:
            for query in sample.queries:
                by_fp[query["fp"]].append(query)
        return by_fp

    def candidate(self, kind: str, summary: str, recommendation: str, **kwargs) -> Candidate:
        evidence = {"window": self.figures(), **kwargs.pop("evidence", {})}
        return Candidate(kind=kind, route=self.route, method=self.method, tenant_id=self.tenant_id, summary=summary,
                         recommendation=recommendation, evidence=evidence, **kwargs)


def group(samples: Iterable) -> list[RouteEvidence]:
    routes: dict[tuple, RouteEvidence] = {}
    for sample in samples:
        key = (sample.tenant_id, sample.route, sample.method)
        if key not in routes:
            routes[key] = RouteEvidence(*key)
        routes[key].samples.append(sample)
    return list(routes.values())


def _majority(entries: list[dict], total: int) -> bool:
    return len(entries) >= total / 2


# -- detectors ----------------------------------------------------------------------------------------
def detect_queries(ev: RouteEvidence) -> list[Candidate]:
    found = []
    n_min, repeat_min = conf.N_PLUS_ONE_MIN_REPEATS, conf.REPEATED_QUERY_MIN_REPEATS
    for _fp, entries in ev.shapes().items():
        if not _majority(entries, ev.n):
            continue
        sql = entries[0]["sql"]
        repeats = statistics.median(e["n"] for e in entries)
        distinct = statistics.median(e["distinct"] for e in entries)
        identical = statistics.median(e["identical"] for e in entries)
        ms = sum(e["ms"] for e in entries) / len(entries)
        table = table_of(sql)
        if repeats >= n_min and distinct >= n_min:
            evidence = {"statement": normalise(sql)[:500], "table": table, "per_request": repeats,
                        "distinct_parameters": distinct, "ms_per_request": round(ms, 2)}
            found.append(ev.candidate(
                "n_plus_one", f"{int(repeats)}x per request ({int(distinct)} parameter sets) on {table}: "
                f"{normalise(sql)[:160]}",
                f"Load the related rows of {table} in one query (select_related for a foreign key, "
                "prefetch_related for a reverse or many-to-many relation) instead of one query per item.",
                subject=table, evidence=evidence, impact=f"{int(repeats) - 1} queries and ~{ms:.1f} ms per request",
                fix={"change": f"select_related/prefetch_related on the queryset that reads {table}"}))
        elif identical >= repeat_min:
            evidence = {"statement": normalise(sql)[:500], "table": table, "identical_per_request": identical,
                        "ms_per_request": round(ms, 2)}
            found.append(ev.candidate(
                "repeated_query", f"the same statement {int(identical)}x per request on {table}: "
                f"{normalise(sql)[:160]}",
                "Run the statement once per request and reuse its result (keep it in a local variable, or "
                "cached_property on the object that needs it).",
                subject=table, evidence=evidence, impact=f"{int(identical) - 1} identical queries per request",
                fix={"change": f"reuse the result of the repeated query on {table}"}))
    return found


def detect_plans(ev: RouteEvidence) -> list[Candidate]:
    found, seen = [], set()
    for _fp, entries in ev.shapes().items():
        if not _majority(entries, ev.n):
            continue
        mean_ms = sum(e["ms"] for e in entries) / max(sum(e["n"] for e in entries), 1)
        if mean_ms < conf.SLOW_QUERY_MS:
            continue
        sample = max(entries, key=lambda e: e["ms"])
        plan = plans.explain(sample["sql"], sample["params"])
        verdict = plans.judge(plan, large_rows=conf.LARGE_TABLE_ROWS) if plan else None
        if verdict is None or (verdict.kind, verdict.table) in seen:
            continue
        seen.add((verdict.kind, verdict.table))
        column = verdict.columns[0] if verdict.columns and verdict.columns[0] != "?" else None
        if verdict.kind != "unindexable_search" and column and pgstats.leading_index(verdict.table, column):
            continue  # the column leads an index already: the plan's choice is not a missing index
        evidence = {"statement": sample["sql"][:1000], "plan": verdict.detail, "table": verdict.table,
                    "table_rows": verdict.table_rows, "estimated_rows": verdict.plan_rows,
                    "ms_per_call": round(mean_ms, 2), "create_index": verdict.statement,
                    **pgstats.evidence(sql=sample["sql"], table=verdict.table, column=column)}
        hot = pgstats.hot_sequential(evidence.get("table_stats"), large_rows=conf.LARGE_TABLE_ROWS)
        where = f"{verdict.table}({', '.join(verdict.columns)})"
        if verdict.kind == "unindexable_search":
            advice = (f"A contains / case-insensitive search on {where} scans all {verdict.table_rows} rows and "
                      "no B-tree can serve it: add a trigram GIN index (below) or use full-text search.")
        elif verdict.kind == "unindexed_sort":
            advice = (f"ORDER BY {verdict.columns[0]} ... LIMIT sorts all {verdict.table_rows} rows of "
                      f"{verdict.table}: an index on the sort column returns the first rows directly.")
        else:
            advice = (f"The filter on {where} reads all {verdict.table_rows} rows to keep about "
                      f"{verdict.plan_rows}: add the index below (it is not created automatically).")
        found.append(ev.candidate(
            verdict.kind, f"{verdict.detail}; {mean_ms:.1f} ms per call; table_rows={verdict.table_rows}; "
            f"fix: {verdict.statement}", advice, subject=where[:255], evidence=evidence,
            impact=f"~{mean_ms:.1f} ms per request", fix={"statement": verdict.statement},
            severity="critical" if hot else "warning"))
    return found


def detect_unbounded(ev: RouteEvidence) -> list[Candidate]:
    lengths = [s.list_len for s in ev.samples if s.list_len is not None]
    if len(lengths) < ev.n / 2 or max(lengths, default=0) < conf.UNBOUNDED_MIN_ITEMS:
        return []
    longest = max(lengths)
    unlimited = [q for s in ev.samples for q in s.queries
                 if not q["limit"] and q["rows"] >= min(longest, conf.UNBOUNDED_MIN_ITEMS)]
    if not unlimited:
        return []  # the list is long but its query is bounded (a paginated page of a big size)
    table = table_of(unlimited[0]["sql"])
    table_rows = plans.table_rows(table) if table != "?" else None
    size = max(s.size for s in ev.samples)
    return [ev.candidate(
        "unbounded_result", f"list of {longest} items ({size} bytes) from an unlimited query on {table} "
        f"(table_rows={table_rows}): {normalise(unlimited[0]['sql'])[:120]}",
        "Paginate the list (LIMIT/OFFSET or cursor pagination, e.g. DRF's pagination class): its size grows "
        "with the table, and so do its query, serialisation time and response size.",
        subject=table, evidence={"list_length": longest, "response_bytes": size, "table": table,
                                 "table_rows": table_rows, "statement": normalise(unlimited[0]["sql"])[:500]},
        impact=f"{longest} rows serialised per request, growing with {table}",
        fix={"change": "paginate the list"})]


def detect_dependencies(ev: RouteEvidence, *, breakers: set[str]) -> list[Candidate]:
    found = []
    calls_by_host: dict[str, list[tuple]] = defaultdict(list)
    for sample in ev.samples:
        for call in sample.calls:
            calls_by_host[call["host"]].append((sample, call))
    for host, pairs in calls_by_host.items():
        samples_with = {id(s) for s, _ in pairs}
        if len(samples_with) < ev.n / 2:
            continue
        durations = [c["ms"] for _, c in pairs]
        bad = [(s, c) for s, c in pairs if c["error"] or (c["status"] or 0) >= 500 or c["ms"] >= conf.DEPENDENCY_SLOW_MS]
        hurt = {id(s) for s, c in bad if s.status >= 500 or s.wall_ms >= conf.DEPENDENCY_SLOW_MS}
        no_timeout = [c for _, c in pairs if c["timeout_s"] is None]
        figures = {"host": host, "calls": len(pairs), "failed_or_slow": len(bad),
                   "responses_hurt": len(hurt), "call_p95_ms": round(percentile(durations, 0.95), 1),
                   "without_timeout": len(no_timeout),
                   "breakers": sorted({c["breaker"] for _, c in pairs if c.get("breaker")})}
        suggested_timeout = round(min(max(percentile(durations, 0.99) * 2 / 1000, 1.0), 10.0), 1)
        breaker = {"name": host[:100], "timeout_s": suggested_timeout, "failure_rate_threshold_pct": "50",
                   "minimum_calls": 10, "window_size": 50, "open_duration_s": 30.0,
                   "description": "Proposed by optimization"}
        # A breaker policy named after the host, or the calls going through a breaker (the breaker transport's
        # default per-host breaker has no policy row, and a mapped host uses a breaker of another name).
        guarded = host in breakers or sum(bool(c.get("breaker")) for _, c in pairs) >= len(pairs) / 2
        if len(no_timeout) >= len(pairs) / 2:
            found.append(ev.candidate(
                "dependency_without_timeout", f"{len(no_timeout)}/{len(pairs)} calls to {host} without a timeout "
                f"(p95 {figures['call_p95_ms']} ms, {len(hurt)} responses hurt)",
                f"Give the calls to {host} a timeout: a hung dependency otherwise holds this request (and its "
                f"worker) for ever. Applying creates a breaker policy `{host}` with timeout {suggested_timeout} s, "
                "which Bulwark's httpx transport enforces.",
                subject=host, evidence=figures, severity="critical" if hurt else "warning",
                impact=f"requests bounded at {suggested_timeout} s instead of unbounded",
                fix={"policy": "breaker", "data": breaker}))
        elif len(hurt) >= max(ev.n * 0.2, 1) and not guarded:
            found.append(ev.candidate(
                "dependency_failing_without_breaker", f"{len(bad)}/{len(pairs)} calls to {host} failed or were "
                f"slow and {len(hurt)}/{ev.n} responses suffered; no breaker",
                f"Put {host} behind a circuit breaker with a fallback: while it fails, calls are refused at once "
                "instead of every request waiting for it and failing.",
                subject=host, evidence=figures, severity="critical",
                impact=f"{len(hurt)} of {ev.n} sampled responses failed or waited on {host}",
                fix={"policy": "breaker", "data": breaker}))
    return found


def _route_regex(route: str) -> str:
    """A Django route pattern as an anchored RE2 path pattern (`api/<int:pk>/` -> `^/api/[0-9]+/$`)."""
    if route.startswith("^"):
        return "^/" + route[1:]
    converters = {"int": "[0-9]+", "slug": "[-a-zA-Z0-9_]+", "uuid": "[0-9a-f-]{36}", "path": ".+", "str": "[^/]+"}
    out, pos = "^/", 0
    for match in re.finditer(r"<(?:(\w+):)?\w+>", route):
        out += re.escape(route[pos:match.start()]) + converters.get(match.group(1) or "str", "[^/]+")
        pos = match.end()
    return out + re.escape(route[pos:]) + "$"


def detect_uncached(ev: RouteEvidence) -> list[Candidate]:
    if ev.method != "GET":
        return []
    ok = [s for s in ev.samples if 200 <= s.status < 300]
    if len(ok) < ev.n * 0.95:
        return []
    hashes = Counter(s.body_hash for s in ok if s.body_hash)
    if not hashes:
        return []
    top_hash, same = hashes.most_common(1)[0]
    if same < len(ok) * 0.9:
        return []
    if any(s.calls for s in ok):
        return []  # time spent waiting on a dependency is the dependency detectors' question
    work = [s for s in ok if "hit" not in s.cache_status.lower() and (s.db_queries > 0 or s.cpu_ms >= 2)]
    median_wall = statistics.median(s.wall_ms for s in ok)
    median_work = statistics.median(s.db_ms + s.cpu_ms for s in ok)
    if len(work) < len(ok) * 0.9 or median_work < conf.HOT_READ_MIN_MS:
        return []
    policy = {"name": f"opt-{re.sub(r'[^a-z0-9-]+', '-', ev.route.lower()).strip('-')}"[:63],
              "path_pattern": _route_regex(ev.route), "methods": ["GET", "HEAD"], "ttl_s": 60}
    return [ev.candidate(
        "uncached_hot_read", f"{len(work)}/{ev.n} GET responses recomputed ({median_wall:.1f} ms median, "
        f"{statistics.median(s.db_queries for s in ok):.0f} queries) with the same body {same}/{len(ok)} times",
        "The responses do not change between requests but each one is recomputed: cache them with a Bulwark "
        "cache policy (applying creates one per user, 60 s; widen it to role or tenant if the body is the same "
        "for everyone).",
        evidence={"same_body": same, "ok_responses": len(ok), "body_hash": top_hash},
        impact=f"~{median_wall:.0f} ms per request saved on cache hits",
        fix={"policy": "cache", "data": policy})]


def detect_cpu(ev: RouteEvidence) -> list[Candidate]:
    cpu = statistics.median(s.cpu_ms for s in ev.samples)
    wall = statistics.median(s.wall_ms for s in ev.samples)
    # Dominated by CPU among what the request did (CPU, database, outgoing calls); wall time also holds the
    # wait for a core on a busy host, which no code change in this route removes.
    waited = statistics.median(s.db_ms + sum(c["ms"] for c in s.calls) for s in ev.samples)
    if cpu < conf.CPU_HOT_MS or cpu < 2 * waited:
        return []
    frames: Counter = Counter()
    for sample in ev.samples:
        for name, count in sample.frames:
            frames[name] += count
    hottest = [name for name, _ in frames.most_common(3) if name != "<library>"]
    where = hottest[0] if hottest else "(no own-code frame sampled)"
    return [ev.candidate(
        "cpu_hot_path", f"{cpu:.0f} ms CPU of {wall:.0f} ms wall per request; hottest: {where}",
        f"The request is CPU-bound; most samples are in {where}. Make that function cheaper (a better "
        "algorithm, precomputation) or cache its result.",
        evidence={"cpu_ms_median": cpu, "wall_ms_median": wall, "hottest_frames": frames.most_common(5)},
        impact=f"~{cpu:.0f} ms CPU per request", subject=where.split(":")[0][:255],
        fix={"change": f"optimise {where}"})]


def merge_root_causes(found: list[Candidate]) -> list[Candidate]:
    """Keep root causes; fold the symptoms they explain on the same route into their evidence: identical
    statements inside an N+1 loop; CPU time or a recomputed response explained by a code-level cause; the
    CPU time of a stable response, which caching removes."""
    kinds = {c.kind: c for c in found}
    code_cause = next((kinds[k] for k in CODE_KINDS if k in kinds), None)
    kept = []
    for candidate in found:
        cause = None
        if candidate.kind == "repeated_query" and "n_plus_one" in kinds:
            cause = kinds["n_plus_one"]
        elif candidate.kind in ("cpu_hot_path", "uncached_hot_read") and code_cause is not None:
            cause = code_cause
        elif candidate.kind == "cpu_hot_path" and "uncached_hot_read" in kinds:
            cause = kinds["uncached_hot_read"]
        if cause is not None:
            fold(cause, candidate)
        else:
            kept.append(candidate)
    return kept


def analyse_route(ev: RouteEvidence, *, breakers: set[str]) -> list[Candidate]:
    if ev.n < conf.MIN_SAMPLES:
        return []
    found = [*detect_queries(ev), *detect_plans(ev), *detect_unbounded(ev),
             *detect_dependencies(ev, breakers=breakers), *detect_uncached(ev), *detect_cpu(ev)]
    return merge_root_causes(found)
