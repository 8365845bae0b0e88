from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.analytics.api import views

router = SimpleRouter()
router.register("forecasts", views.ForecastViewSet, basename="analytics-forecast")
router.register("anomalies", views.AnomalyViewSet, basename="analytics-anomaly")

urlpatterns = [
    path("points/", views.PointsIngestView.as_view(), name="analytics-points"),
    *router.urls,
]
