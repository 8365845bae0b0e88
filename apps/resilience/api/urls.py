from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.resilience.api import views

router = SimpleRouter(trailing_slash=True)
router.register("policies", views.BreakerPolicyViewSet, basename="breaker-policy")
router.register("retry-policies", views.RetryPolicyViewSet, basename="retry-policy")
router.register("events", views.BreakerEventViewSet, basename="breaker-event")
router.register("breakers", views.BreakerViewSet, basename="breaker")

urlpatterns = [
    path("dependencies/<str:name>/scorecard/", views.ScorecardView.as_view(), name="dependency-scorecard"),
    *router.urls,
]
