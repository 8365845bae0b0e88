"""The command's output contract, the analyze job, and the bounded, allowlisted load-test job."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from apps.optimization.models import Finding, LoadTest
from benchmarks.optimization_demo.urls import HEALTHY, PLANTED

pytestmark = [pytest.mark.django_db, pytest.mark.urls("benchmarks.optimization_demo.urls")]


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("optimization_analyze", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_stdout_holds_only_finding_lines_and_progress_goes_to_stderr(drive):
    drive(PLANTED["repeated_query"])
    drive(HEALTHY[1])
    out, err = _run("--window", "15m")
    lines = out.splitlines()
    assert lines == [line for line in lines if len(line.split("\t")) == 3]
    assert [line.split("\t")[:2] for line in lines] == [["repeated_query", f"GET {PLANTED['repeated_query']}"]]
    assert "finding(s)" in err


def test_tenant_option_scopes_the_analysis(drive, tenant_a):
    drive(PLANTED["repeated_query"])  # anonymous, no anonymous tenant: platform traffic
    out, _ = _run("--tenant", tenant_a.slug)
    assert out == ""
    assert not Finding.objects.filter(tenant=tenant_a).exists()


@pytest.mark.parametrize("args", [["--window", "soon"], ["--window", "0m"], ["--tenant", "nobody"]])
def test_bad_options_are_errors(args):
    with pytest.raises(CommandError):
        _run(*args)


def test_analyze_job_diagnoses_its_tenants_traffic_only(tenant_a, token_client):
    from apps.optimization.jobs import analyze

    client = token_client(tenant_a, "viewer")
    for _ in range(30):
        client.get("/" + PLANTED["repeated_query"])
    from apps.optimization import collector

    collector.sink.flush(0)

    class Ctx:
        tenant = tenant_a

        def progress(self, pct, message=""):
            pass

    result = analyze(Ctx(), {})
    assert result["kinds"] == ["repeated_query"]
    assert Finding.objects.get(tenant=tenant_a).route == PLANTED["repeated_query"]


def test_loadtest_refuses_targets_outside_the_allowlist(tenant_a, member_client):
    client = member_client(tenant_a, "operator")
    response = client.post("/api/v1/jobs/", {"type": "loadtest", "params": {"target": "http://example.com"}},
                           format="json")
    assert response.status_code == 400
    assert "target" in str(response.json())
    response = client.post("/api/v1/jobs/", {"type": "loadtest", "params": {
        "target": "http://127.0.0.1:8000", "concurrency": 10_000}}, format="json")
    assert response.status_code == 400
    assert "concurrency" in str(response.json())


def test_loadtest_step_up_against_this_server_stores_its_figures(tenant_a, live_server):
    from apps.jobs.models import JobRun
    from apps.optimization.jobs import LoadTestParams, run_loadtest

    params = LoadTestParams(data={"target": live_server.url, "paths": ["/healthz"], "duration_s": 1,
                                  "step_up": {"start": 1, "step": 1, "max": 2, "p95_threshold_ms": 10_000}})
    params.is_valid(raise_exception=True)
    run = JobRun.objects.create(tenant=tenant_a, type="loadtest", params={})

    class Ctx:
        tenant = tenant_a

        def __init__(self):
            self.run = run
            self.reported = []

        def progress(self, pct, message=""):
            self.reported.append(pct)

    ctx = Ctx()
    result = run_loadtest(ctx, dict(params.validated_data))
    assert [step["concurrency"] for step in result["steps"]] == [1, 2]
    assert all(step["requests"] > 0 and step["p95_ms"] >= step["p50_ms"] for step in result["steps"])
    assert result["knee"] is None
    assert ctx.reported == [50, 100]
    assert LoadTest.objects.get(tenant=tenant_a).steps == result["steps"]
