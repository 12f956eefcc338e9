from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications (webhooks and e-mail)"

    def ready(self):
        from events.handlers import on_recorded

        from . import outbox

        # Every write of events queues its webhook deliveries and e-mails in the same transaction.
        on_recorded(outbox.write_outbox)

        from events.visibility import restrict

        from .api import NotificationSettingsView, WebhookEndpointViewSet

        restrict("webhook.", WebhookEndpointViewSet.read_role)
        restrict("organization.", NotificationSettingsView.read_role)  # the notification settings
