from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from .sql import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="reports-sqlite-functions")
