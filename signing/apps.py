from django.apps import AppConfig


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = "Counterparty signatures"

    def ready(self):
        from contracts.services import register_approval_gate

        from . import services

        register_approval_gate("counterparty signature", services.signature_missing)
