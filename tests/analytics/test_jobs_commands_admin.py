"""The scheduled jobs, the two CSV commands (deterministic), and the admin's forecast chart."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.analytics.models import Forecast
from apps.jobs import runner
from apps.jobs.models import JobSchedule
from apps.jobs.registry import registry
from apps.jobs.services import job_submit, schedules_sync_all
from tests.analytics.factories import AnomalyFactory, ForecastFactory, SeriesPointFactory
from tests.analytics.series import seasonal_5min, seasonal_hourly


def test_both_job_types_are_registered_with_a_schedule():
    assert registry["analytics.forecast_refresh"].cron == "7 * * * *"
    assert registry["analytics.detect"].interval_min == 5


@pytest.mark.django_db
def test_schedules_sync_declares_the_analytics_schedules():
    schedules_sync_all()
    declared = {s.name: s for s in JobSchedule.objects.filter(declared=True)}
    assert declared["analytics.forecast_refresh"].cron == "7 * * * *"
    assert declared["analytics.detect"].interval_min == 5


@pytest.mark.django_db
def test_the_refresh_job_forecasts_every_ingested_series_of_its_tenant(tenant_a, tenant_b):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for i in range(1, 6):
        SeriesPointFactory(tenant=tenant_a, series="ingested:mine", timestamp=hour - timedelta(hours=i), value=i)
        SeriesPointFactory(tenant=tenant_b, series="ingested:theirs", timestamp=hour - timedelta(hours=i), value=i)
    run = job_submit(job_type="analytics.forecast_refresh", params={}, tenant=tenant_a, submitted_by=None)
    runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert list(Forecast.objects.values_list("tenant", "series")) == [(tenant_a.pk, "ingested:mine")]
    detect = job_submit(job_type="analytics.detect", params={}, tenant=tenant_a, submitted_by=None)
    runner.execute(detect.pk)
    detect.refresh_from_db()
    assert detect.status == "succeeded", detect.error
    assert detect.result["series"] == 1


def _write_csv(path: Path, values: np.ndarray, step_s: int) -> None:
    start = np.datetime64("2026-01-05T00:00:00")
    rows = [f"{start + np.timedelta64(step_s * i, 's')},{v:.3f}".replace("T", " ") for i, v in enumerate(values)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")


def test_analytics_detect_writes_a_score_per_row_the_same_every_time(tmp_path):
    values = seasonal_5min(4, seed=8)
    values[800:803] += 50
    _write_csv(tmp_path / "in.csv", values, 300)
    call_command("analytics_detect", str(tmp_path / "in.csv"), str(tmp_path / "a.csv"))
    call_command("analytics_detect", str(tmp_path / "in.csv"), str(tmp_path / "b.csv"))
    first = (tmp_path / "a.csv").read_bytes()
    assert first == (tmp_path / "b.csv").read_bytes()
    lines = first.decode().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score" and len(lines) == len(values) + 1
    scores = np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])
    assert scores.min() >= 0 and scores.max() <= 1
    assert 800 <= int(np.argmax(scores)) <= 803


def test_analytics_forecast_writes_h_rows_after_the_last_the_same_every_time(tmp_path):
    _write_csv(tmp_path / "in.csv", seasonal_hourly(5, seed=9), 3600)
    for name in ("a.csv", "b.csv"):
        call_command("analytics_forecast", str(tmp_path / "in.csv"), str(tmp_path / name), "--horizon", "24",
                     "--step", "1h")
    first = (tmp_path / "a.csv").read_bytes()
    assert first == (tmp_path / "b.csv").read_bytes()
    lines = first.decode().splitlines()
    assert lines[0] == "timestamp,forecast,lower80,upper80" and len(lines) == 25
    assert lines[1].startswith("2026-02-09 00:00:00,")     # the hour after the last input row
    for line in lines[1:]:
        _, p, lo, hi = line.split(",")
        assert float(lo) <= float(p) <= float(hi)


@pytest.mark.parametrize("content, message", [("a,b\n1,2\n", "header"), ("timestamp,value\nnow,1\n", "timestamp"),
                                              ("timestamp,value\n2026-01-01 00:00:00,x\n", "number")])
def test_commands_refuse_bad_csv_with_a_message(tmp_path, content, message):
    (tmp_path / "in.csv").write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("analytics_detect", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))
    with pytest.raises(CommandError, match=message):
        call_command("analytics_forecast", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "--horizon", "3",
                     stderr=io.StringIO())


@pytest.mark.django_db
def test_the_admin_draws_the_forecast_band_and_lists_anomaly_signals(tenant_a, make_member, client):
    forecast = ForecastFactory(tenant=tenant_a, threshold=11.0)
    anomaly = AnomalyFactory(tenant=tenant_a)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(f"/admin/bulwark_analytics/forecast/{forecast.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "fill-opacity" in html and "threshold 11" in html
    page = client.get(f"/admin/bulwark_analytics/anomaly/{anomaly.pk}/change/")
    assert page.status_code == 200 and "ingested:x" in page.content.decode()
