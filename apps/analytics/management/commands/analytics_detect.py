"""`manage.py analytics_detect IN.csv OUT.csv`: online anomaly scores for a `timestamp,value` CSV (NAB layout)."""
from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.analytics import detection
from apps.analytics.series import SeriesError, median_step, read_csv


class Command(BaseCommand):
    help = ("Add `anomaly_score` in [0, 1] to every row of a timestamp,value CSV: computed online in one pass, "
            "repeat suppression applied (a threshold fires once per event). Deterministic.")

    def add_arguments(self, parser):
        parser.add_argument("input", type=Path)
        parser.add_argument("output", type=Path)

    def handle(self, *args, input: Path, output: Path, **options):
        began = time.process_time()
        try:
            text = input.read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {input}: {exc.strerror}") from None
        try:
            stamps, epochs, values = read_csv(text)
        except SeriesError as exc:
            raise CommandError(f"{input}: {exc}") from None
        result = detection.detect(values, step_s=median_step(epochs))
        value_text = [line.split(",", 1)[1].strip() for line in text.splitlines()[1:] if line.strip()]
        lines = ["timestamp,value,anomaly_score"]
        lines += [f"{t},{v},{s:.6f}" for t, v, s in zip(stamps, value_text, result.score.tolist(), strict=True)]
        output.write_text("\n".join(lines) + "\n")
        if options["verbosity"] > 1:
            self.stderr.write(f"{len(values)} rows in {time.process_time() - began:.2f} s CPU")
