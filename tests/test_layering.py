"""The apps' imports follow the layers of ARCHITECTURE.md, and no two apps import each other (walked with ast).

Layers, bottom to top: core < tenancy < audit < jobs < {ratelimit, caching, resilience} < monitoring <
{analytics, alerting, optimization} < console. An app may import only apps of lower layers; the hot-path
apps never import each other. Every import counts, including those inside functions and TYPE_CHECKING
blocks: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

APPS_DIR = Path(__file__).resolve().parents[1] / "apps"

LAYERS: list[set[str]] = [
    {"core"},
    {"tenancy"},
    {"audit"},
    {"jobs"},
    {"ratelimit", "caching", "resilience"},
    {"monitoring"},
    {"analytics", "alerting", "optimization"},
    {"console"},
]
# Layers whose apps must not import one another (they sit side by side on the request path).
ISOLATED_LAYERS = [{"ratelimit", "caching", "resilience"}]

# Known violations, each with its reason; an entry that no longer occurs fails the test, so it gets removed.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def rank_of() -> dict[str, int]:
    return {app: rank for rank, layer in enumerate(LAYERS) for app in layer}


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            if node.module == "apps":  # from apps import ratelimit
                found.extend((f"apps.{alias.name}", node.lineno) for alias in node.names)
    return found


def app_edges(apps_dir: Path) -> dict[tuple[str, str], list[str]]:
    """(importing app, imported app) -> ["apps/x/file.py:line", ...] for every import across apps.
    Relative imports stay inside their package, so they never cross apps."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(apps_dir.rglob("*.py")):
        relative = path.relative_to(apps_dir)
        if len(relative.parts) < 2 or "migrations" in relative.parts:
            continue
        source = relative.parts[0]
        for module, line in imported_modules(ast.parse(path.read_text(), filename=str(path))):
            parts = module.split(".")
            if parts[0] == "apps" and len(parts) > 1 and parts[1] != source:
                edges[(source, parts[1])].append(f"apps/{relative}:{line}")
    return edges


def layer_violations(edges: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], str]:
    ranks = rank_of()
    found = {}
    for (source, target), places in edges.items():
        if source not in ranks or target not in ranks:
            unknown = source if source not in ranks else target
            found[(source, target)] = f"app {unknown!r} has no layer in tests/test_layering.py ({places[0]})"
        elif ranks[target] > ranks[source]:
            found[(source, target)] = f"{source} (layer {ranks[source]}) imports {target} (layer {ranks[target]}) at {places[0]}"
        elif ranks[target] == ranks[source] and any(source in layer for layer in ISOLATED_LAYERS):
            found[(source, target)] = f"{source} imports {target}, its neighbour on the request path, at {places[0]}"
    return found


def cycles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected groups of more than one app (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in pairs:
        graph[source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(graph)):
        if node not in index:
            visit(node)
    return groups


def test_every_app_has_a_layer():
    apps = {p.name for p in APPS_DIR.iterdir() if (p / "apps.py").exists()}
    assert apps - set(rank_of()) == set(), "place the new app in LAYERS (and in ARCHITECTURE.md)"


def test_no_import_breaks_the_layer_order():
    violations = layer_violations(app_edges(APPS_DIR))
    unexpected = {pair: why for pair, why in violations.items() if pair not in KNOWN_EXCEPTIONS}
    assert unexpected == {}


def test_no_import_cycle_between_apps():
    pairs = set(app_edges(APPS_DIR)) - set(KNOWN_EXCEPTIONS)
    assert cycles(pairs) == []


def test_known_exceptions_still_occur():
    edges = app_edges(APPS_DIR)
    stale = [pair for pair in KNOWN_EXCEPTIONS if pair not in edges]
    assert stale == [], "these imports are gone: remove them from KNOWN_EXCEPTIONS"


def test_tenancy_imports_no_other_bulwark_app_but_core():
    assert {target for source, target in app_edges(APPS_DIR) if source == "tenancy"} <= {"core"}


@pytest.fixture
def fake_apps(tmp_path: Path) -> Path:
    def write(app: str, name: str, text: str) -> None:
        (tmp_path / app).mkdir(exist_ok=True)
        (tmp_path / app / name).write_text(text)

    write("tenancy", "models.py", "from apps.core.conf import AppSettings\n")
    write("core", "seed.py", "def f():\n    from apps.tenancy.models import Tenant\n")
    write("caching", "services.py", "from apps import ratelimit\n")
    write("ratelimit", "services.py", "import apps.caching.keys\n")
    write("tenancy", "migrations.py", "")
    return tmp_path


def test_the_walker_sees_lazy_and_package_imports_and_reports_them(fake_apps):
    edges = app_edges(fake_apps)
    assert set(edges) == {("tenancy", "core"), ("core", "tenancy"), ("caching", "ratelimit"),
                          ("ratelimit", "caching")}
    assert set(layer_violations(edges)) == {("core", "tenancy"), ("caching", "ratelimit"), ("ratelimit", "caching")}
    assert sorted(cycles(set(edges))) == [["caching", "ratelimit"], ["core", "tenancy"]]
