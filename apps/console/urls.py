"""Action URLs of the console, under /admin/console/ (signed-in admin users; roles checked per view)."""
from django.urls import path

from apps.console import views

app_name = "console"

urlpatterns = [
    path("breakers/<str:name>/<str:action>/", views.admin_view(views.breaker_action), name="breaker-action"),
    path("alerts/<int:alert_id>/<str:action>/", views.admin_view(views.alert_action), name="alert-action"),
]
