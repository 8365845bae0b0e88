from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.monitoring.api import views

router = SimpleRouter()
router.register("endpoints", views.EndpointViewSet, basename="monitoring-endpoint")

urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="monitoring-ingest"),
    path("thresholds/", views.ThresholdsView.as_view(), name="monitoring-thresholds"),
    path("health/", views.HealthView.as_view(), name="monitoring-health"),
    path("system/", views.SystemView.as_view(), name="monitoring-system"),
    *router.urls,
]
