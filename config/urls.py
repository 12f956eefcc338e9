from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from breaches.api import BreachViewSet
from config.api.routers import ApiRouter
from config.views import healthz
from contracts.api import ContractViewSet, CounterpartyViewSet, LineItemViewSet
from events.api import EventViewSet
from ledger.api import BalanceView, LedgerEntryViewSet, LotsView
from slas.api import CalendarViewSet, SchemaView, SlaRuleViewSet
from tenancy.api import MembershipViewSet, MeView, TokenRefreshView, TokenView
from workorders.api import WorkOrderViewSet

router = ApiRouter()
router.register("counterparties", CounterpartyViewSet, basename="counterparty")
router.register("contracts", ContractViewSet, basename="contract")
router.register(r"contracts/(?P<contract_pk>[0-9]+)/line_items", LineItemViewSet, basename="contract-line-item")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("sla_rules", SlaRuleViewSet, basename="sla-rule")
router.register("work_orders", WorkOrderViewSet, basename="work-order")
router.register("breaches", BreachViewSet, basename="breach")
router.register("ledger_entries", LedgerEntryViewSet, basename="ledger-entry")
router.register("events", EventViewSet, basename="event")
router.register("members", MembershipViewSet, basename="member")

api_v1 = [
    path("token", TokenView.as_view(), name="token"),
    path("token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("me", MeView.as_view(), name="me"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^schemas/(?P<name>escalation|penalty_clause)/?$", SchemaView.as_view(), name="config-schema"),
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/balance/?$", BalanceView.as_view(), name="contract-balance"),
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/lots/?$", LotsView.as_view(), name="contract-lots"),
    *router.urls,
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/", include("config.graphql.urls")),  # POST /api/graphql (issue 10)
]
