"""The operator console of analytics: forecasts with their chart and backtest, anomalies with their signals."""
from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from apps.analytics.charts import forecast_svg
from apps.analytics.models import Anomaly, Forecast
from apps.tenancy.admin_base import ComputedRowsAdmin


@admin.register(Forecast)
class ForecastAdmin(ComputedRowsAdmin):
    list_display = ["series", "horizon", "model", "mase_model", "mase_seasonal_naive", "threshold_crossing_at",
                    "generated_at", "tenant"]
    list_filter = ["model", "horizon"]
    search_fields = ["series"]
    fields = ["series", "horizon", "step_s", "model", "chart", "backtest_summary", "threshold",
              "threshold_crossing_at", "history_points", "generated_at"]
    readonly_fields = fields

    @admin.display(description="Forecast (line) with its 80 % interval (band)")
    def chart(self, obj: Forecast):
        return forecast_svg(obj.points, obj.threshold)

    @admin.display(description="Backtest (rolling origin)")
    def backtest_summary(self, obj: Forecast):
        if obj.mase_model is None:
            return format_html("{}", "Not backtested (under four weeks of history): seasonal-naive.")
        return format_html("MASE of the model {} vs seasonal-naive {} over {} origins: {} chosen.",
                           f"{obj.mase_model:.3f}", f"{obj.mase_seasonal_naive:.3f}",
                           obj.backtest.get("origins", "?"), obj.get_model_display())


@admin.register(Anomaly)
class AnomalyAdmin(ComputedRowsAdmin):
    list_display = ["series", "kind", "score", "started_at", "ended_at", "value", "expected_range", "tenant"]
    list_filter = ["kind"]
    search_fields = ["series"]
    date_hierarchy = None
    fields = ["kind", "series", "score", "value", "expected_range", "started_at", "ended_at", "drivers",
              "detected_at"]
    readonly_fields = fields

    @admin.display(description="Expected range")
    def expected_range(self, obj: Anomaly):
        if obj.expected_low is None or obj.expected_high is None:
            return "-"
        return f"{obj.expected_low:.4g} .. {obj.expected_high:.4g}"

    @admin.display(description="Signals that drove it")
    def drivers(self, obj: Anomaly):
        rows = [(str(s.get("signal", "")), s.get("value", ""), s.get("expected", ""), s.get("z", ""))
                for s in (obj.signals or [])[:10]]
        return format_html("<table><tr><th>signal</th><th>value</th><th>expected</th><th>z</th></tr>{}</table>",
                           format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows))
