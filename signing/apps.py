from django.apps import AppConfig


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = "Counterparty signatures"

    def ready(self):
        from contracts.services import register_approval_gate
        from notifications.emails import register_email

        from . import mail, services

        register_approval_gate("counterparty signature", services.signature_missing)
        # The link goes out through the outbox, sent by deliver_notifications like every e-mail.
        register_email("contract.signature_requested", mail.SIGNATURE_REQUEST)
