from django.apps import AppConfig


class WorkordersConfig(AppConfig):
    name = "workorders"
    verbose_name = "Work orders"

    def ready(self):
        from events.handlers import on

        from . import services

        on("calendar.updated", services.on_calendar_updated)
        for event_type in ("sla_rule.created", "sla_rule.updated", "sla_rule.amended"):
            on(event_type, services.on_rule_changed)
