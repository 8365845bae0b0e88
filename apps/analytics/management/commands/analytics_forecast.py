"""`manage.py analytics_forecast IN.csv OUT.csv --horizon H --step 1h`: forecast with an 80 % interval."""
from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.analytics import forecasting
from apps.analytics.series import SeriesError, format_timestamp, parse_step, read_csv, regularise


class Command(BaseCommand):
    help = ("Write timestamp,forecast,lower80,upper80 for the H steps after the last row of a timestamp,value "
            "CSV, with the app's model selection (gradient boosting only where its backtest beats "
            "seasonal-naive). Deterministic.")

    def add_arguments(self, parser):
        parser.add_argument("input", type=Path)
        parser.add_argument("output", type=Path)
        parser.add_argument("--horizon", type=int, required=True, help="Steps to forecast (1..10000).")
        parser.add_argument("--step", default="1h", help="Step of the forecast: 1h (default), 30m, 1d, 300s...")

    def handle(self, *args, input: Path, output: Path, horizon: int, step: str, **options):
        began = time.process_time()
        if not 1 <= horizon <= 10_000:
            raise CommandError("--horizon must be between 1 and 10000")
        try:
            step_s = parse_step(step)
            text = input.read_text()
            _, epochs, values = read_csv(text)
        except OSError as exc:
            raise CommandError(f"cannot read {input}: {exc.strerror}") from None
        except SeriesError as exc:
            raise CommandError(f"{input}: {exc}") from None
        if len(values) == 0:
            raise CommandError(f"{input}: no rows")
        series = regularise(epochs, values, step_s)
        result = forecasting.forecast(series.values, start_s=series.start_s, step_s=step_s, horizon=horizon)
        lines = ["timestamp,forecast,lower80,upper80"]
        lines += [f"{format_timestamp(t)},{p:.6f},{lo:.6f},{hi:.6f}" for t, p, lo, hi in zip(
            result.timestamps().tolist(), result.point.tolist(), result.lower.tolist(), result.upper.tolist(),
            strict=True)]
        output.write_text("\n".join(lines) + "\n")
        if options["verbosity"] > 1:
            self.stderr.write(f"{len(values)} rows, model {result.model}, backtest {result.backtest}, "
                              f"{time.process_time() - began:.2f} s CPU")
