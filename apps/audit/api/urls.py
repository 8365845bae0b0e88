from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.audit.api import views

router = SimpleRouter(trailing_slash=True)
router.register("events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("export/", views.AuditExportView.as_view(), name="audit-export"),
    *router.urls,
]
