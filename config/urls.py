"""Root URLs: admin, health probes, the versioned API and its schema."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.health import healthz, readyz
from apps.monitoring.api.views import metrics

api_v1 = [
    path("", include("apps.tenancy.api.urls")),
    path("audit/", include("apps.audit.api.urls")),
    path("jobs/", include("apps.jobs.api.urls")),
    path("ratelimit/", include("apps.ratelimit.api.urls")),
    path("resilience/", include("apps.resilience.api.urls")),
    path("caching/", include("apps.caching.api.urls")),
    path("monitoring/", include("apps.monitoring.api.urls")),
    path("analytics/", include("apps.analytics.api.urls")),
    path("alerting/", include("apps.alerting.api.urls")),
    path("optimization/", include("apps.optimization.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/console/", include("apps.console.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/auth/", include("rest_framework.urls", namespace="rest_framework")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler400 = "apps.core.api.errors.bad_request"
handler404 = "apps.core.api.errors.page_not_found"
handler500 = "apps.core.api.errors.server_error"
