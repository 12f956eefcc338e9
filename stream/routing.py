"""WebSocket routes (config/asgi.py)."""

from django.urls import re_path

from .consumers import EventStreamConsumer

websocket_urlpatterns = [re_path(r"^api/v1/stream/?$", EventStreamConsumer.as_asgi())]
