"""The reports' routes, included under /api/v1/ by config/urls.py."""

from django.urls import re_path

from config.api.routers import ApiRouter

from .api import AtRiskViewSet, BacktestView, ComplianceView, EvidenceView, StatementView

router = ApiRouter()
router.register("reports/at_risk", AtRiskViewSet, basename="report-at-risk")

urlpatterns = [
    re_path(r"^reports/sla_compliance/?$", ComplianceView.as_view(), name="report-sla-compliance"),
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/statement/?$", StatementView.as_view(), name="contract-statement"),
    re_path(r"^breaches/(?P<breach_pk>[0-9]+)/evidence/?$", EvidenceView.as_view(), name="breach-evidence"),
    re_path(r"^backtests/?$", BacktestView.as_view(), name="backtests"),
    *router.urls,
]
