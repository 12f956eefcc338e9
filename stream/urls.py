"""`GET /api/v1/events/stream` (Server-Sent Events); included by config/urls.py before the
events router, whose detail route would otherwise take `stream` for an id."""

from django.urls import re_path

from .sse import EventStreamView

urlpatterns = [re_path(r"^events/stream/?$", EventStreamView.as_view(), name="event-stream")]
