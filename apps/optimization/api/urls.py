from rest_framework.routers import SimpleRouter

from apps.optimization.api import views

router = SimpleRouter()
router.register("findings", views.FindingViewSet, basename="optimization-finding")
router.register("loadtests", views.LoadTestViewSet, basename="optimization-loadtest")

urlpatterns = router.urls
