from django.apps import AppConfig


class SlasConfig(AppConfig):
    name = "slas"
    verbose_name = "SLAs"

    def ready(self):
        from contracts.amendments import register_amendment_part

        from .amendments import SLA_RULES

        register_amendment_part("sla_rules", SLA_RULES)

        from events.handlers import on

        from .services import carry_rules_into_renewal

        on("contract.created", carry_rules_into_renewal)
