"""Job types of analytics: the scheduled forecast refresh and anomaly detection, per tenant."""
from __future__ import annotations

from rest_framework import serializers

from apps.analytics import services
from apps.core.api.serializers import StrictSerializer
from apps.jobs.registry import job_type


class ForecastRefreshParams(StrictSerializer):
    series = serializers.CharField(max_length=300, required=False,
                                   help_text="One series key; default: every series the sources list.")
    horizon = serializers.IntegerField(min_value=1, max_value=168, required=False)
    threshold = serializers.FloatField(required=False, help_text="Critical threshold of `series`.")


@job_type("analytics.forecast_refresh", params=ForecastRefreshParams, timeout_s=600, max_attempts=2,
          cron="7 * * * *")
def forecast_refresh(ctx, params: dict) -> dict:
    """Refresh the tenant's forecasts (every listed series, or the one named)."""
    if params.get("series"):
        forecast = services.forecast_refresh(tenant=ctx.tenant, series=params["series"],
                                             horizon=params.get("horizon"), threshold=params.get("threshold"))
        return {"refreshed": 1, "model": forecast.model}
    return services.forecasts_refresh_all(tenant=ctx.tenant, progress=ctx.progress)


@job_type("analytics.detect", timeout_s=300, max_attempts=2, interval_min=5)
def detect(ctx, params: dict) -> dict:
    """Score the tenant's series and endpoints for anomalies; one Anomaly row per event."""
    return services.detect_all(tenant=ctx.tenant, progress=ctx.progress)
