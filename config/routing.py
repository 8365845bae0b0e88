"""WebSocket routes of every app."""
from django.urls import path

from apps.console.routing import websocket_urlpatterns as console_patterns
from apps.core.consumers import HealthConsumer

websocket_urlpatterns = [
    path("ws/health/", HealthConsumer.as_asgi()),
    *console_patterns,
]
