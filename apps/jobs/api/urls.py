from rest_framework.routers import SimpleRouter

from apps.jobs.api.views import JobRunViewSet

router = SimpleRouter(trailing_slash=True)
router.register("", JobRunViewSet, basename="job")

urlpatterns = router.urls
