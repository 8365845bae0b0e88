from rest_framework.routers import SimpleRouter

from apps.alerting.api import views

router = SimpleRouter(trailing_slash=True)
router.register("rules", views.RuleViewSet, basename="alerting-rule")
router.register("channels", views.ChannelViewSet, basename="alerting-channel")
router.register("silences", views.SilenceViewSet, basename="alerting-silence")
router.register("alerts", views.AlertViewSet, basename="alerting-alert")
router.register("deliveries", views.DeliveryViewSet, basename="alerting-delivery")

urlpatterns = router.urls
