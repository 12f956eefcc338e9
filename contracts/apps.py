from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts"

    def ready(self):
        from events.visibility import restrict

        from .assets_api import AssetViewSet

        restrict("asset.", AssetViewSet.read_role)
