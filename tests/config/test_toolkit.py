"""The REST toolkit's cross-cutting behaviour: errors, JSON everywhere, health, schema, throttling."""

from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.test import RequestFactory
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from config.api.filters import ISODateField, ISOInstantField, Predicate, PredicateField, StrictIntegerField
from config.api.middleware import ApiErrorMiddleware


@pytest.mark.django_db
class TestJsonErrors:
    def test_unknown_api_url_is_json_404(self, api):
        response = api("viewer").get("/api/v1/no-such-resource")
        assert response.status_code == 404
        assert response.json() == {"message": "Not found."}

    def test_unknown_api_url_without_token_is_json_too(self, anon):
        response = anon.get("/api/v2/anything")
        assert response.status_code == 404 and response["Content-Type"] == "application/json"

    def test_non_numeric_id_is_json_404(self, api):
        response = api("viewer").get("/api/v1/counterparties/abc")
        assert response.status_code == 404 and response.json()["message"]

    def test_method_not_allowed_is_json_405(self, api):
        response = api("manager").delete("/api/v1/counterparties")
        assert response.status_code == 405
        assert response.json()["message"] == 'Method "DELETE" not allowed.'

    def test_unsupported_media_type_is_json(self, api):
        response = api("manager").post(
            "/api/v1/counterparties", "name=x", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 415 and "message" in response.json()

    def test_unexpected_error_in_a_view_is_json_500(self):
        class Broken(APIView):
            authentication_classes = []
            permission_classes = []

            def get(self, request):
                raise RuntimeError("boom")

        response = Broken.as_view()(APIRequestFactory().get("/api/v1/broken"))
        assert response.status_code == 500
        assert response.data == {"message": "Internal server error."}

    def test_middleware_turns_exceptions_and_html_errors_under_api_into_json(self):
        from django.http import HttpResponseNotFound

        middleware = ApiErrorMiddleware(lambda request: HttpResponseNotFound("<h1>Not Found</h1>"))
        request = RequestFactory().get("/api/v1/x")
        response = middleware(request)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        crashed = middleware.process_exception(request, RuntimeError("boom"))
        assert crashed.status_code == 500 and b"Internal server error" in crashed.content
        # Outside /api/ Django's own pages are left alone.
        assert middleware.process_exception(RequestFactory().get("/admin/"), RuntimeError()) is None
        assert middleware(RequestFactory().get("/admin/x"))["Content-Type"].startswith("text/html")

    def test_throttled_requests_get_429_with_retry_after(self, api, monkeypatch):
        monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
        client = api("viewer")
        statuses = [client.get("/api/v1/counterparties").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = client.get("/api/v1/counterparties")
        assert int(response["Retry-After"]) >= 1
        assert "throttled" in response.json()["message"].lower()


@pytest.mark.django_db
class TestHealthAndSchema:
    def test_healthz_ok(self, anon):
        response = anon.get("/healthz")
        assert response.status_code == 200
        assert response.json()["database"] == "ok"

    def test_healthz_503_when_the_database_is_unreachable(self, anon, monkeypatch):
        def unreachable(*args, **kwargs):
            raise OperationalError("connection refused")

        monkeypatch.setattr(connection, "cursor", unreachable)
        response = anon.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "error"

    def test_schema_documents_conventions(self, anon):
        response = anon.get("/api/v1/schema?format=json")
        assert response.status_code == 200
        schema = response.json()
        listing = schema["paths"]["/api/v1/counterparties"]["get"]
        assert {"X-Pagination-Total-Entries", "Link"} <= set(listing["responses"]["200"]["headers"])
        assert {"fields", "sort", "page", "per_page", "kind", "ids"} <= {p["name"] for p in listing["parameters"]}
        assert listing["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
        assert "jwtAuth" in schema["components"]["securitySchemes"]
        create = schema["paths"]["/api/v1/counterparties"]["post"]
        assert "Location" in create["responses"]["201"]["headers"]
        assert "422" in create["responses"]

    def test_swagger_ui_is_served(self, anon):
        assert anon.get("/api/v1/docs").status_code == 200


class TestPredicateGrammar:
    def parse(self, raw, field=None, ordered=True):
        return PredicateField(value_field=field or forms.IntegerField(), ordered=ordered).clean(raw)

    def test_forms(self):
        assert self.parse(None) is None
        assert self.parse("") == Predicate("empty")
        assert self.parse("!") == Predicate("present")
        assert self.parse("5") == Predicate("in", values=(5,))
        assert self.parse("1,2,3") == Predicate("in", values=(1, 2, 3))
        assert self.parse("!1,2") == Predicate("not_in", values=(1, 2))
        assert self.parse(">5") == Predicate("range", bounds=(("gt", 5),))
        assert self.parse(">=5<9") == Predicate("range", bounds=(("gte", 5), ("lt", 9)))
        assert self.parse("<=9") == Predicate("range", bounds=(("lte", 9),))

    @pytest.mark.parametrize("raw", ["x", "1,,2", ">", ">1<", ">a", "!x", "1,x"])
    def test_malformed(self, raw):
        with pytest.raises(ValidationError):
            self.parse(raw)

    def test_a_decimal_takes_the_bodies_rule(self):
        # Django's DecimalField reads "1_0" as 10 and "١٢" as 12; a filter takes what a body takes.
        field = forms.DecimalField()
        assert self.parse(">=12.50", field) == Predicate("range", bounds=(("gte", Decimal("12.50")),))
        assert self.parse("-2, 3", field) == Predicate("in", values=(Decimal("-2"), Decimal("3")))
        for raw in ("1_0", "١٢", "1e1", "+1", ">1_0", "5.", "NaN"):
            with pytest.raises(ValidationError, match="plain decimal"):
                self.parse(raw, field)

    def test_an_integer_is_ascii_digits_with_an_optional_minus(self):
        # Django's IntegerField reads it as int() does: "1_0" was 10, "١" 1, "+1" and "1.0" 1.
        field = StrictIntegerField(min_value=-100, max_value=100)
        assert self.parse("-5,7", field) == Predicate("in", values=(-5, 7))
        assert self.parse(">=-10<-2", field) == Predicate("range", bounds=(("gte", -10), ("lt", -2)))
        for raw in ("1_0", "\u0661", "+1", "1.0", "--1", "-", "1e1", ">=1_0"):
            with pytest.raises(ValidationError, match="whole number"):
                self.parse(raw, field)
        with pytest.raises(ValidationError, match="less than or equal to 100"):
            self.parse("9" * 90, field)

    def test_dates_and_instants_are_iso_8601_only(self):
        import datetime as dt

        day = ISODateField()
        assert self.parse("<2026-12-01", day) == Predicate("range", bounds=(("lt", dt.date(2026, 12, 1)),))
        instant = ISOInstantField()
        utc = dt.datetime(2026, 12, 20, 10, tzinfo=dt.UTC)
        assert self.parse("2026-12-20T11:00+01:00,2026-12-20 10:00", instant) == Predicate("in", values=(utc, utc))
        for raw, field in [
            ("12/20/2026", day), ("Dec 20 2026", day), ("2026-2-5", day), ("20261220", day), ("2026-02-30", day),
            ("11/30/2026 23:00", instant), ("12/20/2026", instant), ("2026-02-30T10:00Z", instant),
            ("\u0662026-12-20T10:00Z", instant),
        ]:  # fmt: skip
            with pytest.raises(ValidationError):
                self.parse(raw, field)

    def test_comparisons_only_on_ordered_fields(self):
        with pytest.raises(ValidationError, match="Comparisons"):
            self.parse(">1", ordered=False)


@pytest.mark.django_db
def test_a_filter_set_builds_only_the_filters_a_request_names():
    """Issue 15: every declared filter was deep-copied and given a form field per request; an
    absent one filters nothing, so only those named are built. Unbound (the schema), all of them."""
    from django.http import QueryDict

    from contracts.api import ContractFilterSet
    from contracts.models import Contract

    data = QueryDict("status=active,suspended&auto_renew=true&page=2")
    filterset = ContractFilterSet(data, Contract.objects.all())
    assert set(filterset.filters) == {"status", "auto_renew"}
    assert filterset.is_valid(), filterset.errors
    assert set(filterset.form.fields) == {"status", "auto_renew"}
    assert "status" in str(filterset.qs.query) and "auto_renew" in str(filterset.qs.query)
    assert set(ContractFilterSet(None, Contract.objects.none()).filters) == set(ContractFilterSet.base_filters)
    assert len(ContractFilterSet.base_filters) > 10  # the class keeps every filter


def test_list_item_errors_are_keyed_by_json_path():
    from config.api.exceptions import flatten_errors

    detail = {"priorities": {0: ["Not a valid choice."]}, "holidays": [{}, {"date": ["Invalid date."]}]}
    assert flatten_errors(detail) == {"priorities[0]": ["Not a valid choice."], "holidays[1].date": ["Invalid date."]}


@pytest.mark.django_db
def test_choice_errors_name_the_valid_values(api, org):
    """Found by an outside integrator: `"labour" is not a valid choice.` (a line item's kind) and
    `"urgent"` (a work order's priority) said nothing of what is; a filter said `Select a valid
    choice.`. Bodies and filters now name the values (config.api.filters.invalid_choice)."""
    from tests.contracts.factories import make_contract

    contract = make_contract(org)
    client = api("manager")
    response = client.post(
        f"/api/v1/contracts/{contract.pk}/line_items", {"kind": "labour", "description": "x"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["errors"] == {"kind": ['"labour" is not a valid choice: one of service, part.']}
    response = client.post(
        "/api/v1/work_orders",
        {"contract_id": contract.pk, "summary": "x", "priority": "urgent", "reported_at": "2026-03-02T09:00:00Z"},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["errors"]["priority"] == [
        '"urgent" is not a valid choice: one of critical, high, medium, low, planned.'
    ]
    for container in (["high"], {"a": 1}):  # DRF's error quoted the Python text: "['high']" is not ...
        response = client.post(
            "/api/v1/work_orders",
            {"contract_id": contract.pk, "priority": container, "reported_at": "2026-03-02T09:00:00Z"},
            format="json",
        )
        assert response.json()["errors"] == {"priority": ["Expected a JSON scalar, not an object or an array."]}
    response = client.get("/api/v1/work_orders?priority=high,urgent")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "priority": ['"urgent" is not a valid choice: one of critical, high, medium, low, planned.']
    }
    # The views that read their own parameters say the same (reports, a contract's visits).
    response = client.get("/api/v1/reports/sla_compliance?from=2026-01-01&to=2026-01-31&metric=response,speed")
    assert response.json()["errors"] == {
        "metric": ['"speed" is not a valid choice: one of response, on_site, resolution.']
    }
    response = client.get(f"/api/v1/contracts/{contract.pk}/visits?state=due")
    assert response.json()["errors"]["state"][0].startswith('"due" is not a valid choice: one of scheduled,')
    # A choice field that may be blank says so (a ledger entry's reason_code).
    response = client.get("/api/v1/ledger_entries?reason_code=nope")
    assert response.json()["errors"]["reason_code"][0].startswith('"nope" is not a valid choice: one of lot_expired,')


def test_the_development_secret_key_is_flagged_by_the_deploy_check(settings):
    """Found by an outside sweep: the committed development key, which also signs the API's tokens
    when SECRET_KEY is unset, passed `manage.py check --deploy` without a word."""
    from django.core.checks.security.base import check_secret_key

    from config.settings import DEVELOPMENT_SECRET_KEY

    settings.SECRET_KEY = DEVELOPMENT_SECRET_KEY
    assert [warning.id for warning in check_secret_key(None)] == ["security.W009"]
    settings.SECRET_KEY = "a-real-deployment-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0-long-and-varied"
    assert check_secret_key(None) == []
