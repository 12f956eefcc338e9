"""Billing's routes under /api/v1/ (included by config/urls.py)."""

from django.urls import re_path

from config.api.routers import ApiRouter

from .api import BillingLineViewSet, ContractTemplateViewSet, ExportBatchViewSet, PeriodsView

router = ApiRouter()
router.register("billing_lines", BillingLineViewSet, basename="billing-line")
router.register("billing_exports", ExportBatchViewSet, basename="billing-export")
router.register("contract_templates", ContractTemplateViewSet, basename="contract-template")

urlpatterns = [
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/periods/?$", PeriodsView.as_view(), name="contract-periods"),
    *router.urls,
]
