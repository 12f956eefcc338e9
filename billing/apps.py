from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from contracts.amendments import register_change_guard, register_effective_date_guard
        from contracts.services import register_lifecycle_step, register_renewal_terms
        from events.handlers import on

        from . import periods, services

        on("ledger.entry_posted", services.on_entry_posted)
        on("ledger.entry_posted", services.on_penalty_posted)
        register_lifecycle_step("billing periods closed", services.run_billing)
        register_effective_date_guard("closed billing period", services.closed_period_fault)
        register_change_guard("opened billing period", services.opened_period_faults)
        register_renewal_terms("escalated charge", periods.renewal_terms)

        from events.visibility import restrict

        from .api import BillingLineViewSet, ContractTemplateViewSet

        restrict("billing.", BillingLineViewSet.read_role)
        restrict("contract_template.", ContractTemplateViewSet.read_role)
