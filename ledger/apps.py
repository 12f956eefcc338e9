from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Hour ledger"

    def ready(self):
        from contracts.amendments import register_change_guard
        from contracts.services import register_lifecycle_step
        from events.handlers import on

        from . import services

        on("contract.state_changed", services.on_contract_state_changed)
        on("breach.finalized", services.on_breach_finalized)
        on("contract.terms_changed", services.on_contract_terms_changed)
        on("breach.waived", services.on_breach_waived)
        register_lifecycle_step("lots expired", services.expire_lots)
        register_change_guard("hours budget cut", services.budget_cut_faults)
