from django.apps import AppConfig


class BreachesConfig(AppConfig):
    name = "breaches"
    verbose_name = "Breaches"

    def ready(self):
        from events.handlers import on

        from . import services

        on("sla_clock.breached", services.on_clock_breached)
        on("sla_clock.stopped", services.on_clock_stopped)
