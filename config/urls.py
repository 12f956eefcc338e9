from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from breaches.api import BreachViewSet
from config.api.routers import ApiRouter
from config.views import OpenAPIView, RedocView, SwaggerView, admin_login, healthz
from contracts.api import (
    AmendmentViewSet,
    ContractViewSet,
    CounterpartyViewSet,
    LineItemViewSet,
    TermVersionViewSet,
)
from events.api import EventViewSet
from ledger.api import BalanceView, LedgerEntryViewSet, LotsView
from signing.api import SignatureRequestViewSet
from slas.api import CalendarViewSet, SchemaView, SlaRuleViewSet
from tenancy.api import MembershipViewSet, MeView, TokenRefreshView, TokenView
from workorders.api import WorkOrderViewSet

router = ApiRouter()
router.register("counterparties", CounterpartyViewSet, basename="counterparty")
router.register("contracts", ContractViewSet, basename="contract")
router.register(r"contracts/(?P<contract_pk>[0-9]+)/line_items", LineItemViewSet, basename="contract-line-item")
router.register(r"contracts/(?P<contract_pk>[0-9]+)/amendments", AmendmentViewSet, basename="contract-amendment")
router.register(r"contracts/(?P<contract_pk>[0-9]+)/terms", TermVersionViewSet, basename="contract-terms")
router.register(
    r"contracts/(?P<contract_pk>[0-9]+)/approval_requests",
    SignatureRequestViewSet,
    basename="contract-approval-request",
)
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
    path("schema", OpenAPIView.as_view(), name="schema"),
    path("docs", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", RedocView.as_view(url_name="schema", template_name="api/redoc.html"), name="redoc"),
    re_path(r"^schemas/(?P<name>escalation|penalty_clause)/?$", SchemaView.as_view(), name="config-schema"),
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/balance/?$", BalanceView.as_view(), name="contract-balance"),
    re_path(r"^contracts/(?P<contract_pk>[0-9]+)/lots/?$", LotsView.as_view(), name="contract-lots"),
    path("", include("reports.urls")),  # reports and evidence (issue 11)
    *router.urls,
    path("", include("visits.urls")),  # assets, contract rules, visit plans, visits (issue 13)
    path("", include("billing.urls")),  # issue 12: periods, billing lines, exports, contract templates
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/login/", admin_login),  # before the admin's own: its login, rate-limited
    path("admin/", admin.site.urls),
    path("api/v1/", include("stream.urls")),  # live event stream (SSE); the WebSocket is in config/asgi.py
    path("api/v1/", include(api_v1)),
    path("api/v1/", include("notifications.urls")),  # webhooks and e-mail (issue 9)
    path("", include("signing.urls")),  # the counterparty's approval page, /approve/<token>
    path("api/", include("config.graphql.urls")),  # POST /api/graphql (issue 10)
]

if settings.SERVE_STATIC:
    # The API docs' and the admin's assets, served by the service itself (issue 8: the docs work
    # with no internet, under gunicorn too). A front proxy may serve STATIC_ROOT instead.
    static_prefix = settings.STATIC_URL.strip("/")
    urlpatterns.append(re_path(rf"^{static_prefix}/(?P<path>.*)$", serve_static, {"insecure": True}))
