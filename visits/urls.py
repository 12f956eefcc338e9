"""The routes of issue 13 (assets, contract rules, visit plans, visits), included by config/urls.py."""

from django.urls import re_path

from config.api.routers import ApiRouter
from contracts.assets_api import AssetViewSet
from workorders.rules_api import ContractRuleViewSet

from .api import ContractVisitsView, VisitPlanViewSet

router = ApiRouter()
router.register("assets", AssetViewSet, basename="asset")
router.register("contract_rules", ContractRuleViewSet, basename="contract-rule")
router.register(r"contracts/(?P<contract_pk>[0-9]+)/visit_plans", VisitPlanViewSet, basename="contract-visit-plan")

urlpatterns = [
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/visits/?$", ContractVisitsView.as_view(), name="contract-visits"),
    *router.urls,
]
