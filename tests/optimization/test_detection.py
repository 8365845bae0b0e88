"""Each route-level kind is found on its planted endpoint, with evidence, and never on its healthy twin."""
from __future__ import annotations

import pytest

from benchmarks.optimization_demo.urls import HEALTHY, PLANTED
from tests.optimization.conftest import kinds_on

pytestmark = [pytest.mark.django_db, pytest.mark.urls("benchmarks.optimization_demo.urls")]

TWIN = dict(zip(PLANTED, HEALTHY, strict=True))


@pytest.mark.parametrize("kind", list(PLANTED))
def test_planted_problem_is_found_and_its_healthy_twin_stays_silent(kind, drive, analyze, upstream):
    planted, twin = PLANTED[kind], TWIN[kind]
    drive(planted)
    drive(twin)
    found = analyze()
    assert kinds_on(found, planted) == {kind}, [c.line() for c in found]
    assert kinds_on(found, twin) == set(), [c.line() for c in found if c.route == twin]
    finding = next(c for c in found if c.route == planted)
    assert finding.evidence["window"]["samples"] == 30
    assert finding.recommendation
    assert finding.line().startswith(f"{kind}\tGET {planted}\t")


def test_too_few_requests_are_not_evidence(drive, analyze):
    drive(PLANTED["n_plus_one"], n=10)
    assert kinds_on(analyze(), PLANTED["n_plus_one"]) == set()


def test_plans_carry_the_create_index_statement(drive, analyze):
    drive(PLANTED["missing_index"])
    drive(PLANTED["unindexed_sort"])
    drive(PLANTED["unindexable_search"])
    found = {c.kind: c for c in analyze()}
    assert 'ON "optimization_demo_order" ("reference")' in found["missing_index"].fix["statement"]
    assert found["missing_index"].fix["statement"].startswith("CREATE INDEX CONCURRENTLY")
    assert '("amount" DESC)' in found["unindexed_sort"].fix["statement"]
    assert "gin_trgm_ops" in found["unindexable_search"].fix["statement"]
    assert "Seq Scan" in found["missing_index"].evidence["plan"]


def test_cpu_hot_path_names_the_hottest_function(drive, analyze):
    drive(PLANTED["cpu_hot_path"])
    finding = next(c for c in analyze() if c.kind == "cpu_hot_path")
    assert "_crunch" in finding.summary


def test_one_finding_per_root_cause_folds_the_symptoms():
    """Identical statements inside an N+1 loop and the CPU of serialising an unbounded list are symptoms."""
    from apps.optimization.analysis import merge_root_causes
    from apps.optimization.findings import Candidate

    def make(kind):
        return Candidate(kind=kind, route="r/", method="GET", tenant_id=None, summary=kind, recommendation="")

    kept = merge_root_causes([make("n_plus_one"), make("repeated_query"), make("unbounded_result"),
                              make("cpu_hot_path"), make("uncached_hot_read")])
    assert [c.kind for c in kept] == ["n_plus_one", "unbounded_result"]
    assert [a["kind"] for a in kept[0].evidence["also"]] == ["repeated_query", "cpu_hot_path", "uncached_hot_read"]
    kept = merge_root_causes([make("cpu_hot_path"), make("uncached_hot_read")])
    assert [c.kind for c in kept] == ["uncached_hot_read"]


def test_findings_are_updated_not_repeated(drive, analyze):
    from apps.optimization.models import Finding

    drive(PLANTED["repeated_query"])
    analyze()
    analyze()
    rows = Finding.objects.filter(kind="repeated_query")
    assert rows.count() == 1
    assert rows.get().occurrences == 2
