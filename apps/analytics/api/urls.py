from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.analytics.api import views


class OptionalSlashRouter(SimpleRouter):
    """The issue pins `/api/v1/analytics/forecasts?series=...` (no slash); `/forecasts/` works too."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("forecasts", views.ForecastViewSet, basename="analytics-forecast")
router.register("anomalies", views.AnomalyViewSet, basename="analytics-anomaly")

urlpatterns = [
    path("points", views.PointsIngestView.as_view(), name="analytics-points"),
    *router.urls,
]
