from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.ratelimit.api import views

router = SimpleRouter(trailing_slash=True)
router.register("policies", views.PolicyViewSet, basename="ratelimit-policy")

urlpatterns = [
    path("check/", views.CheckView.as_view(), name="ratelimit-check"),
    *router.urls,
]
