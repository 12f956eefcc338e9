"""The notifications app's routes, included under /api/v1/ by config/urls.py."""

from django.urls import re_path

from config.api.routers import ApiRouter

from .api import NotificationSettingsView, WebhookDeliveryViewSet, WebhookEndpointViewSet

router = ApiRouter()
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register(r"webhooks/(?P<webhook_pk>[0-9]+)/deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    re_path(r"^notification_settings/?$", NotificationSettingsView.as_view(), name="notification-settings"),
    *router.urls,
]
