from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from config import pg_instants

        from . import signals  # noqa: F401 - connects the membership cache's invalidation

        pg_instants.connect()  # every app reads instants: the foundation app connects the loader
