from django.urls import include, path

from tests.caching import views

urlpatterns = [
    path("items/<int:pk>/", views.item, name="item"),
    path("content/", views.content, name="content"),
    path("who/", views.who, name="who"),
    path("decorated-who/", views.decorated_who, name="decorated-who"),
    path("error/", views.error, name="error"),
    path("cookie/", views.cookie, name="cookie"),
    path("private/", views.private, name="private"),
    path("big/", views.big, name="big"),
    path("echo-credentials/", views.echo_credentials, name="echo-credentials"),
    path("localised/", views.localised, name="localised"),
    path("boom/", views.boom, name="boom"),
    path("decorated/", views.decorated, name="decorated"),
    path("payments/", views.payments, name="payments"),
    path("drf/<int:pk>/", views.drf_item, name="drf-item"),
    path("", include("config.urls")),
]
