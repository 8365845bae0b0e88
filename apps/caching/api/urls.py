from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.caching.api import views

router = SimpleRouter(trailing_slash=True)
router.register("policies", views.CachePolicyViewSet, basename="cache-policy")

urlpatterns = [
    path("invalidate/", views.InvalidateView.as_view(), name="cache-invalidate"),
    path("warm/", views.WarmView.as_view(), name="cache-warm"),
    *router.urls,
]
