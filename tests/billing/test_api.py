"""`/api/v1/billing_lines`, `/api/v1/billing_exports`, `/api/v1/contract_templates` and a contract's
`periods`: the shared base's conventions, and what the base cannot know."""

import csv
import datetime as dt
import io
import itertools
from decimal import Decimal

import pytest
from django.utils.dateparse import parse_datetime

from billing.models import BillingLine, BillingPeriod, ContractTemplate, ExportBatch, TemplateUse
from contracts.models import Contract, Counterparty
from events.models import Event
from slas.models import Calendar, SlaRule
from tests.api_base import ResourceAPITests, WritableResourceAPITests
from tests.contracts.factories import make_contract

from .helpers import d, lifecycle, local, plan_contract, work_at

_n = itertools.count(1)


def make_line(org, contract=None, **fields) -> BillingLine:
    n = next(_n)
    contract = contract or make_contract(org)
    defaults = {
        "kind": "period_charge",
        "description": f"line {n}",
        "quantity": Decimal(1),
        "unit_price": Decimal(100 + n * 7 % 13),
        "amount": Decimal(100 + n * 7 % 13),
        "currency": contract.currency,
        "date": dt.date(2026, 1, 1) + dt.timedelta(days=n * 5 % 17),
        "key": f"test:{n}",
    }
    return BillingLine.objects.create(organization=org, contract=contract, **{**defaults, **fields})


class TestBillingLinesAPI(ResourceAPITests):
    url = "/api/v1/billing_lines"
    read_role = "manager"
    default_sort = "-id"
    default_fields = [
        "id", "contract", "period", "kind", "description", "quantity", "unit_price", "amount", "currency",
        "date", "status", "batch",
    ]  # fmt: skip
    sort_keys = ["date", "amount", "kind", "created_at"]
    # 1 the count, 2 the page's ids (issue 15), 3 the page joined with contract, period and batch.
    list_queries = 3
    filter_cases = [
        ("ids", "a,c", ["a", "c"]),
        ("contract_id", lambda o: str(o["c"].contract_id), ["c"]),
        ("period_id", lambda o: str(o["b"].period_id), ["b"]),
        ("period_id", "", ["a", "c"]),
        ("batch_id", "!", ["c"]),
        ("kind", "overage,top_up", ["b", "c"]),
        ("status", "exported", ["c"]),
        ("status", "!exported", ["a", "b"]),
        ("date", ">=2026-02-01", ["b", "c"]),
        ("date", "<2026-02-01", ["a"]),
        ("currency", "EUR", ["a", "b", "c"]),
        ("created_at", "<2000-01-01", []),
    ]
    malformed_filters = [("date", ">2026-13-01"), ("kind", "gift"), ("status", "paid"), ("contract_id", "x")]

    def factory(self, org, **overrides):
        return make_line(org, **overrides)

    def filter_objects(self, org):
        contract = make_contract(org, currency="EUR")
        period = BillingPeriod.objects.create(
            organization=org, contract=contract, index=0, start_date=dt.date(2026, 2, 1), end_date=dt.date(2026, 2, 28)
        )
        batch = ExportBatch.objects.create(organization=org, line_count=1)
        other = make_contract(org, currency="EUR")
        return {
            "a": make_line(org, contract, date=dt.date(2026, 1, 5)),
            "b": make_line(org, contract, kind="overage", period=period, date=dt.date(2026, 2, 28)),
            "c": make_line(org, other, kind="top_up", status="exported", batch=batch, date=dt.date(2026, 3, 1)),
        }

    def sort_value(self, key, item):
        if key == "amount":
            return Decimal(item[key])
        if key == "created_at":
            return parse_datetime(item[key])
        return item[key]


def test_a_line_traces_to_its_entries_and_breaches(api, org):
    contract = plan_contract(org, hours_per_period=d(1), overage_rate=d(50))
    lifecycle(local(2026, 1, 1, 1))
    worked = work_at(contract, 3, local(2026, 1, 5, 10))
    lifecycle(local(2026, 2, 1, 1))
    line = BillingLine.objects.get(kind="overage")
    body = api("manager").get(f"/api/v1/billing_lines/{line.pk}").json()
    assert (body["quantity"], body["unit_price"], body["amount"], body["currency"]) == (
        "2.00",
        "50.00",
        "100.00",
        "EUR",
    )
    assert worked.pk in body["entries"] and len(body["entries"]) == 2 and body["breaches"] == []
    assert body["period"]["id"] == line.period_id and body["status"] == "pending"


# --- periods ------------------------------------------------------------------------------------


class TestPeriods:
    def test_periods_with_their_money(self, api, org):
        contract = plan_contract(org, hours_per_period=d(10), period_charge=d("99.90"), rollover_percent=100)
        lifecycle(local(2026, 1, 1, 1))
        work_at(contract, 4, local(2026, 1, 7, 10))
        lifecycle(local(2026, 2, 1, 1))
        response = api("viewer").get(f"/api/v1/contracts/{contract.pk}/periods?as_of=2026-02-10T00:00:00Z")
        assert response.status_code == 200, response.content
        jan, feb = response.json()
        assert jan == {
            "id": BillingPeriod.objects.get(contract=contract, index=0).pk, "index": 0, "number": 1,
            "start_date": "2026-01-01", "end_date": "2026-01-31", "status": "closed",
            "included_hours": "10.00", "rolled_over_in": "0.00", "prepaid_hours_added": "0.00",
            "topped_up_hours": "0.00", "charged_hours": "4.00", "overage_hours": "0.00", "expired_hours": "0.00",
            "rolled_over_out": "6.00", "currency": "EUR", "period_charge": "99.90", "overage_charge": "0.00",
            "prepay_purchases": "0.00", "top_up_purchases": "0.00", "service_credits": "0.00", "total": "99.90",
        }  # fmt: skip
        assert (feb["status"], feb["rolled_over_in"], feb["included_hours"]) == ("open", "6.00", "10.00")

    def test_periods_join_their_billing_lines_by_id(self, api, org):
        # Found by an outside integrator: a billing line's period is `{"id": 4, "name": "9 period 4
        # (...)"}` and takes `?period_id=`, but /periods showed only a 0-based index: nothing to
        # join on. Each period has its stored row's id (null before run_lifecycle opens it) and
        # its `number`, the one its name and its lines' descriptions give it (index + 1).
        contract = plan_contract(org, hours_per_period=d(10), period_charge=d("99.90"))
        lifecycle(local(2026, 1, 1, 1))
        lifecycle(local(2026, 2, 1, 1))
        client = api("manager")
        url = f"/api/v1/contracts/{contract.pk}/periods"
        periods = client.get(url, {"as_of": "2026-03-10T00:00:00Z"}).json()  # March not opened yet
        assert [(p["index"], p["number"]) for p in periods] == [(0, 1), (1, 2), (2, 3)]
        rows = {row.index: row for row in BillingPeriod.objects.filter(contract=contract)}
        assert [p["id"] for p in periods] == [rows[0].pk, rows[1].pk, None]
        lines = client.get("/api/v1/billing_lines", {"contract_id": contract.pk, "kind": "period_charge"}).json()
        assert lines
        for line in lines:
            period = next(p for p in periods if p["id"] == line["period"]["id"])
            assert line["period"]["name"] == f"{contract.pk} period {period['number']} ({period['start_date']} to " \
                f"{period['end_date']})"  # fmt: skip
            by_id = client.get("/api/v1/billing_lines", {"period_id": period["id"]}).json()
            assert line["id"] in {other["id"] for other in by_id}
        # The events that opened them say the same (a regression sweep: only period_closed did).
        opened = Event.objects.filter(type="billing.period_opened", payload__contract=contract.pk).order_by("id")
        assert [(e.payload["id"], e.payload["number"]) for e in opened] == [(rows[0].pk, 1), (rows[1].pk, 2)]

    def test_periods_take_the_same_queries_however_many(self, api, org):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = api("viewer")
        counts = []
        for months in (1, 6):
            contract = plan_contract(org, hours_per_period=d(10))
            lifecycle(local(2026, months, 1, 1))
            client.get(f"/api/v1/contracts/{contract.pk}/periods")  # caches the membership
            with CaptureQueriesContext(connection) as queries:
                periods = client.get(f"/api/v1/contracts/{contract.pk}/periods", {"as_of": "2026-07-02T00:00:00Z"})
            assert len(periods.json()) == 7 and periods.json()[0]["id"] is not None
            counts.append(len(queries))
        assert counts[0] == counts[1], counts

    def test_a_contract_without_periods_has_none(self, api, org):
        contract = make_contract(org)
        assert api("viewer").get(f"/api/v1/contracts/{contract.pk}/periods").json() == []

    def test_other_organizations_contract_is_404_and_bad_parameters_400(self, api, org, other_org, anon):
        theirs = plan_contract(other_org)
        assert api("admin").get(f"/api/v1/contracts/{theirs.pk}/periods").status_code == 404
        mine = plan_contract(org)
        assert anon.get(f"/api/v1/contracts/{mine.pk}/periods").status_code == 401
        assert api("viewer").get(f"/api/v1/contracts/{mine.pk}/periods?as_of=yesterday").status_code == 400
        assert api("viewer").get(f"/api/v1/contracts/{mine.pk}/periods?page=2").status_code == 400

    def test_periods_are_not_asked_ahead_of_now(self, api, org):
        # Found by outside sweeps: asked ahead, a period not begun yet showed its charge and none of
        # its hours (they are posted when it begins); and an open-ended monthly plan asked as of 2999
        # computed 12,000 periods in one viewer's request (12 s).
        contract = plan_contract(org, expiry_date=None)
        url = f"/api/v1/contracts/{contract.pk}/periods"
        now = dt.datetime.now(dt.UTC)
        response = api("viewer").get(url, {"as_of": (now + dt.timedelta(minutes=1)).isoformat()})  # a clock ahead
        assert response.status_code == 200 and len(response.json()) >= 11
        for too_far in (dt.timedelta(days=1), dt.timedelta(days=365 * 970)):
            response = api("viewer").get(url, {"as_of": (now + too_far).isoformat()})
            assert response.status_code == 400 and set(response.json()["errors"]) == {"as_of"}


# --- exports ------------------------------------------------------------------------------------


class TestExportsAPI(ResourceAPITests):
    url = "/api/v1/billing_exports"
    read_role = "manager"
    write_role = "manager"
    create_data = {}
    default_sort = "-id"
    default_fields = ["id", "contract", "date_from", "date_to", "line_count", "totals", "created_by", "created_at"]
    sort_keys = ["created_at", "line_count"]
    # 1 the count, 2 the page's ids (issue 15), 3 the page joined with contract and created_by.
    list_queries = 3
    filter_cases = [
        ("ids", "one,two", ["one", "two"]),
        ("contract_id", lambda o: str(o["two"].contract_id), ["two"]),
        ("line_count", ">0", ["one"]),
        ("created_at", ">2000-01-01", ["one", "two"]),
    ]
    malformed_filters = [("line_count", "many"), ("contract_id", "x")]

    def factory(self, org, **overrides):
        return ExportBatch.objects.create(organization=org, line_count=next(_n) % 5, **overrides)

    def filter_objects(self, org):
        return {
            "one": ExportBatch.objects.create(organization=org, line_count=2),
            "two": ExportBatch.objects.create(organization=org, contract=make_contract(org)),
        }

    def sort_value(self, key, item):
        return parse_datetime(item[key]) if key == "created_at" else item[key]

    def test_export_takes_every_pending_line_once(self, api, org):
        contract = make_contract(org)
        lines = [make_line(org, contract, amount=Decimal("10.005")) for _ in range(3)]
        make_line(org, status="exported")
        client = api("manager")
        response = client.post(self.url, {}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert response["Location"].endswith(f"{self.url}/{body['id']}")
        assert body["line_count"] == 3 and sorted(line["id"] for line in body["lines"]) == [x.pk for x in lines]
        assert all(line["status"] == "exported" for line in body["lines"])
        assert body["totals"] == {"EUR": str(sum(Decimal(line["amount"]) for line in body["lines"]))}
        assert client.get(response["Location"]).json() == body
        again = client.post(self.url, {}, format="json").json()
        assert again["line_count"] == 0 and again["lines"] == []
        assert Event.objects.filter(type="billing.exported").count() == 2

    def test_filters_by_contract_and_dates(self, api, org):
        a, b = make_contract(org), make_contract(org)
        early = make_line(org, a, date=dt.date(2026, 1, 10))
        late = make_line(org, a, date=dt.date(2026, 2, 10))
        make_line(org, b, date=dt.date(2026, 1, 10))
        body = {"contract_id": a.pk, "date_from": "2026-01-01", "date_to": "2026-01-31"}
        response = api("manager").post(self.url, body, format="json")
        assert [line["id"] for line in response.json()["lines"]] == [early.pk]
        late.refresh_from_db()
        assert late.status == "pending"

    def test_bad_input_is_422_naming_the_field(self, api, org, other_org):
        theirs = make_contract(other_org)
        client = api("manager")
        response = client.post(self.url, {"contract_id": theirs.pk}, format="json")
        assert response.status_code == 422 and "contract_id" in response.json()["errors"]
        response = client.post(self.url, {"date_from": "2026-02-01", "date_to": "2026-01-01"}, format="json")
        assert response.status_code == 422 and "date_to" in response.json()["errors"]
        response = client.post(self.url, {"status": "exported"}, format="json")
        assert response.status_code == 422 and "status" in response.json()["errors"]

    def test_idempotency_key_returns_the_same_batch(self, api, org):
        make_line(org)
        client = api("manager")
        first = client.post(self.url, {}, format="json", HTTP_IDEMPOTENCY_KEY="nightly-2026-03-01")
        make_line(org)
        retry = client.post(self.url, {}, format="json", HTTP_IDEMPOTENCY_KEY="nightly-2026-03-01")
        assert (first.status_code, retry.status_code) == (201, 201)
        assert retry.json() == first.json() and first.json()["line_count"] == 1
        assert ExportBatch.objects.count() == 1
        clash = client.post(
            self.url, {"date_to": "2026-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="nightly-2026-03-01"
        )
        assert clash.status_code == 422 and "Idempotency-Key" in clash.json()["errors"]

    def test_csv(self, api, org):
        contract = make_contract(org, reference="C-CSV-1")
        line = make_line(org, contract, description='Charge, "January"', amount=Decimal("12.5"))
        client = api("manager")
        response = client.post(self.url, {}, format="json", HTTP_ACCEPT="text/csv")
        assert response.status_code == 201 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert len(rows) == 1
        assert rows[0]["line"] == str(line.pk) and rows[0]["contract_reference"] == "C-CSV-1"
        assert (rows[0]["description"], rows[0]["amount"], rows[0]["currency"]) == ('Charge, "January"', "12.50", "EUR")
        batch = rows[0]["batch"]
        again = client.get(f"{self.url}/{batch}", HTTP_ACCEPT="text/csv")
        assert again.content == response.content
        # a download with a name (found by an outside sweep: none)
        assert response["Content-Disposition"] == again["Content-Disposition"]
        assert again["Content-Disposition"] == f'attachment; filename="billing-export-{batch}.csv"'
        # not a batch (OPTIONS' description, found by the fuzz): no name, and no 500
        assert client.options(f"{self.url}/{batch}?format=csv").status_code == 200
        assert client.options(f"{self.url}?format=csv").status_code == 200
        listed = client.get(self.url, HTTP_ACCEPT="text/csv")
        assert listed["Content-Disposition"] == 'attachment; filename="billing-export.csv"'  # the list, streamed
        error = client.get(f"{self.url}/999999", HTTP_ACCEPT="text/csv")
        assert error.status_code == 404 and error.json() == {"message": "Not found."}


# --- contract templates -------------------------------------------------------------------------


RULE = {"name": "Respond in 4h", "metric": "response", "priorities": ["high"], "target_minutes": 240}
TOP_UP = {"threshold_hours": "2", "mode": "to", "hours": "10", "price_per_hour": "90"}


class TestContractTemplatesAPI(WritableResourceAPITests):
    url = "/api/v1/contract_templates"
    read_role = "manager"
    write_role = "manager"
    deletable = True
    default_fields = [
        "id", "name", "contract_type", "term_months", "currency", "billing_period", "active", "created_at",
        "updated_at",
    ]  # fmt: skip
    sort_keys = ["name", "contract_type", "created_at"]
    # 1 the count, 2 the page's ids (issue 15), 3 the page's rows (the default fields leave out the
    # contracts made from them, which took a prefetch while pages were written from instances).
    list_queries = 3
    create_data = {
        "name": "Managed service, 20 hours a month",
        "contract_type": "managed_service",
        "term_months": 12,
        "currency": "EUR",
        "billing_period": "monthly",
        "period_charge": "1500.00",
        "hours_per_period": "20.00",
        "rollover_percent": 25,
        "overage_rate": "95.00",
        "auto_top_up": TOP_UP,
        "line_items": [{"kind": "service", "description": "Remote support", "quantity": "1.000"}],
        "sla_rules": [RULE],
    }
    update_data = {"name": "Managed service (2027)", "active": False}
    filter_cases = [
        ("ids", "ms,sc", ["ms", "sc"]),
        ("name", "Gold", ["ms"]),
        ("contract_type", "service_contract", ["sc"]),
        ("currency", "USD", ["sc"]),
        ("billing_period", "quarterly", ["sc"]),
        ("active", "false", ["sc"]),
        ("created_at", ">2000-01-01", ["ms", "sc"]),
    ]
    malformed_filters = [("contract_type", "gift"), ("active", "maybe")]

    @pytest.fixture(autouse=True)
    def _detail_actions(self, org):
        counterparty = Counterparty.objects.create(organization=org, name="Northwind")
        self.detail_actions = [
            ("instantiate", {"counterparty_id": counterparty.pk, "reference": "X-1", "start_date": "2026-01-01"})
        ]

    def factory(self, org, **overrides):
        n = next(_n)
        fields = {"name": f"Template {n:04d}", "contract_type": "service_contract", "currency": "EUR", **overrides}
        return ContractTemplate.objects.create(organization=org, **fields)

    def filter_objects(self, org):
        return {
            "ms": self.factory(org, name="Gold", contract_type="managed_service", billing_period="monthly"),
            "sc": self.factory(org, name="Silver", currency="USD", billing_period="quarterly", active=False),
        }

    def check_created(self, body, data):
        assert body["auto_top_up"] == data["auto_top_up"]
        assert body["line_items"][0]["quantity"] == "1.000" and body["sla_rules"][0]["calendar_id"] is None

    def sort_value(self, key, item):
        return parse_datetime(item[key]) if key == "created_at" else item[key]

    def test_invalid_items_and_plans_are_422_naming_the_field(self, api, org, other_org):
        theirs = Calendar.objects.create(organization=other_org, name="Theirs", time_zone="UTC", hours=[])
        client = api("manager")
        cases = [
            ({"line_items": [{"description": ""}]}, "line_items[0].description"),
            ({"sla_rules": [{**RULE, "calendar_id": theirs.pk}]}, "sla_rules[0].calendar_id"),
            ({"sla_rules": [{"name": "x", "metric": "speed"}]}, "sla_rules[0].metric"),
            ({"auto_top_up": {**TOP_UP, "threshold_hours": "5", "hours": "3"}}, "auto_top_up.hours"),
            ({"auto_top_up": {"mode": "up"}}, "auto_top_up"),
            ({"rollover_percent": 101}, "rollover_percent"),
            ({"billing_period": "none", "hours_per_period": "5.00", "rollover_percent": 0}, "hours_per_period"),
            ({"out_of_hours_multiplier": "1.50"}, "out_of_hours_multiplier"),
            ({"billing_calendar_id": theirs.pk}, "billing_calendar_id"),
            ({"currency": "XXY"}, "currency"),
        ]  # fmt: skip
        for change, field in cases:
            response = client.post(self.url, {**self.create_data, **change}, format="json")
            assert response.status_code == 422, (change, response.content)
            assert any(key.startswith(field) for key in response.json()["errors"]), (field, response.json())

    def test_instantiate_makes_a_draft_contract_with_items_and_rules(self, api, org, other_org):
        calendar = Calendar.objects.create(
            organization=org,
            name="Office",
            time_zone="Europe/Amsterdam",
            hours=[{"weekday": 1, "start": "08:00", "end": "17:00"}],
        )
        client = api("manager")
        data = {**self.create_data, "billing_calendar_id": calendar.pk, "out_of_hours_multiplier": "1.50"}
        data["sla_rules"] = [{**data["sla_rules"][0], "calendar_id": calendar.pk}]
        template = client.post(self.url, data, format="json").json()
        counterparty = Counterparty.objects.create(organization=org, name="Northwind")
        body = {
            "counterparty_id": counterparty.pk,
            "reference": "MS-2026-01",
            "start_date": "2026-02-01",
            "period_charge": "1400.00",
        }
        response = client.post(f"{self.url}/{template['id']}/instantiate", body, format="json")
        assert response.status_code == 201, response.content
        made = response.json()
        assert response["Location"].endswith(f"/api/v1/contracts/{made['id']}")
        assert (made["status"], made["reference"], made["expiry_date"]) == ("draft", "MS-2026-01", "2027-01-31")
        assert (made["period_charge"], made["hours_per_period"], made["rollover_percent"]) == ("1400.00", "20.00", 25)
        assert made["billing_calendar"]["id"] == calendar.pk and made["auto_top_up"] == data["auto_top_up"]
        contract = Contract.objects.get(pk=made["id"])
        assert list(contract.line_items.values_list("description", flat=True)) == ["Remote support"]
        rule = SlaRule.objects.get(contract=contract)
        assert (rule.target_minutes, rule.calendar_id, rule.effective_from) == (240, calendar.pk, local(2026, 2, 1))
        assert TemplateUse.objects.get(contract=contract).template_id == template["id"]
        assert Event.objects.filter(type="contract_template.instantiated", object_id=template["id"]).exists()
        # A later change to the template changes no contract made from it.
        client.patch(f"{self.url}/{template['id']}", {"hours_per_period": "40.00"}, format="json")
        contract.refresh_from_db()
        assert contract.hours_per_period == Decimal("20.00")
        assert client.get(f"{self.url}/{template['id']}").json()["contracts"] == [contract.pk]
        assert client.delete(f"{self.url}/{template['id']}").status_code == 409

    def test_instantiate_is_422_naming_the_field(self, api, org, other_org):
        template = self.factory(org, term_months=12)
        theirs = Counterparty.objects.create(organization=other_org, name="Globex customer")
        mine = Counterparty.objects.create(organization=org, name="Northwind")
        client = api("manager")
        url = f"{self.url}/{template.pk}/instantiate"
        cases = [
            ({"reference": "A", "start_date": "2026-01-01"}, "counterparty_id"),
            ({"counterparty_id": theirs.pk, "reference": "A", "start_date": "2026-01-01"}, "counterparty_id"),
            ({"counterparty_id": mine.pk, "reference": "A", "start_date": "2026-02-30"}, "start_date"),
            ({"counterparty_id": mine.pk, "reference": "A", "start_date": "2026-01-01", "colour": "red"}, "colour"),
            ({"counterparty_id": mine.pk, "reference": "A", "start_date": "2026-01-01", "status": "active"}, "status"),
            ({"counterparty_id": mine.pk, "reference": "A", "start_date": "2026-01-01", "rollover_percent": 5},
             "rollover_percent"),
        ]  # fmt: skip
        for body, field in cases:
            response = client.post(url, body, format="json")
            assert response.status_code == 422, (body, response.content)
            assert field in response.json()["errors"], (field, response.json())
        assert Contract.objects.filter(organization=org).count() == 0
        inactive = self.factory(org, active=False)
        body = {"counterparty_id": mine.pk, "reference": "A", "start_date": "2026-01-01"}
        assert client.post(f"{self.url}/{inactive.pk}/instantiate", body, format="json").status_code == 409

    def test_instantiate_in_another_currency_is_refused_when_the_template_states_amounts(self, api, org):
        """Found by an outside test: 2400.00 EUR a month became 2400 JPY (and 2400.000 KWD), every
        figure copied under the new currency. A template with amounts makes contracts in its own
        currency; one without any may be made in any."""
        client = api("manager")
        mine = Counterparty.objects.create(organization=org, name="Northwind")
        body = {"counterparty_id": mine.pk, "start_date": "2027-01-01"}
        priced = client.post(self.url, self.create_data, format="json").json()
        url = f"{self.url}/{priced['id']}/instantiate"
        response = client.post(url, {**body, "reference": "TPL-JPY", "currency": "JPY"}, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {
            "currency": [
                "The template's prices are in EUR (period_charge, overage_rate, auto_top_up.price_per_hour): "
                "instantiate it in EUR, or make a template in JPY."
            ]
        }
        made = client.post(url, {**body, "reference": "TPL-EUR", "currency": "EUR"}, format="json")
        assert made.status_code == 201 and made.json()["period_charge"] == "1500.00"
        # Any amount counts: a line item's unit price, a rule's penalty clause or monthly cap.
        for n, fields in enumerate(
            [
                {"line_items": [{"description": "Seal", "unit_price": "12.00"}]},
                {"sla_rules": [{**RULE, "penalty": {"fixed_amount": "50"}}]},
                {"sla_rules": [RULE, {**RULE, "monthly_penalty_cap": "500"}]},
            ]
        ):
            template = client.post(self.url, {"name": f"T{n}", "contract_type": "service_contract",
                                              "currency": "EUR", **fields}, format="json")  # fmt: skip
            assert template.status_code == 201, template.content
            url = f"{self.url}/{template.json()['id']}/instantiate"
            response = client.post(url, {**body, "reference": f"T{n}-USD", "currency": "USD"}, format="json")
            assert response.status_code == 422, (fields, response.content)
            (message,) = response.json()["errors"]["currency"]
            assert message.startswith("The template's prices are in EUR (") and "USD" in message
        unpriced = self.factory(org)
        url = f"{self.url}/{unpriced.pk}/instantiate"
        made = client.post(url, {**body, "reference": "PLAIN-USD", "currency": "USD"}, format="json")
        assert made.status_code == 201 and made.json()["currency"] == "USD"


def test_the_export_csv_neutralises_text_that_would_start_a_formula():
    # A line's description and contract reference come from what users typed (CSV injection).
    import csv
    import io

    from billing.api import CSVRenderer

    line = {
        "id": 1, "contract": {"id": 2}, "contract_reference": "=cmd|'/c calc'!A0", "period_dates": None,
        "kind": "overage", "description": "@SUM(1+1)", "quantity": "-2.00", "unit_price": "95.00",
        "amount": "-190.00", "currency": "EUR", "date": "2026-11-30", "entries": [], "breaches": [],
    }  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(CSVRenderer().render({"id": 7, "lines": [line]}).decode())))
    assert rows[0]["contract_reference"] == "'=cmd|'/c calc'!A0" and rows[0]["description"] == "'@SUM(1+1)"
    assert rows[0]["quantity"] == "-2.00" and rows[0]["amount"] == "-190.00"


@pytest.mark.django_db
def test_a_rate_finer_than_the_currency_is_shown_as_it_is_so_the_line_adds_up(api, org):
    """Found by an outside sweep: a rate of 110.125 showed as 110.13 (REST and CSV), so quantity
    times unit price missed the amount by a cent, and the description printed 3.33000000000000."""
    contract = plan_contract(org, hours_per_period=d(1), overage_rate=d("110.125"))
    lifecycle(local(2026, 1, 1, 0, 5))
    work_at(contract, d("4.33"), local(2026, 1, 10, 11))
    lifecycle(local(2026, 2, 1, 0, 5))
    client = api("manager")
    [line] = client.get("/api/v1/billing_lines", {"kind": "overage"}).json()
    assert (line["quantity"], line["unit_price"], line["amount"]) == ("3.33", "110.125", "366.72")
    assert Decimal(line["quantity"]) * Decimal(line["unit_price"]) == Decimal("366.71625")  # 366.72, half up
    assert line["description"].endswith(": 3.33 hours beyond the available hours")
    rows = list(
        csv.DictReader(
            io.StringIO(b"".join(client.get("/api/v1/billing_lines", {"format": "csv"}).streaming_content).decode())
        )
    )
    assert [(r["unit_price"], r["amount"]) for r in rows if r["kind"] == "overage"] == [("110.125", "366.72")]
    assert client.get(f"/api/v1/billing_lines/{line['id']}").json()["unit_price"] == "110.125"
    period_charge = plan_contract(org, period_charge=d("1000"))
    lifecycle(local(2026, 1, 1, 0, 6))
    [whole] = client.get("/api/v1/billing_lines", {"contract_id": period_charge.pk}).json()
    assert (whole["unit_price"], whole["amount"]) == ("1000.00", "1000.00")  # the currency's places


@pytest.mark.django_db
@pytest.mark.parametrize(
    "currency, rate, price, overage, prepay, total",
    [
        ("JPY", "1234.5", "333.5", "1852", "500", "2352"),  # 1.5 x 1234.5 = 1851.75; 1.5 x 333.5 = 500.25
        ("KWD", "12.3456", "7.0005", "18.518", "10.501", "29.019"),  # 18.5184; 10.50075
        ("EUR", "0.125", "1.005", "0.19", "1.51", "1.70"),  # 0.1875; 1.5075
    ],
)
def test_lines_round_half_up_to_each_currencys_minor_unit(api, org, currency, rate, price, overage, prepay, total):
    """Worked by hand (tenth round): 1 included hour, 1.5 prepaid, 4 worked: 1.5 hours of overage."""
    contract = plan_contract(
        org,
        currency=currency,
        hours_per_period=d(1),
        overage_rate=d(rate),
        prepay_hours_per_period=d("1.5"),
        prepay_price_per_hour=d(price),
    )
    lifecycle(local(2026, 1, 1, 0, 5))
    work_at(contract, d("4.00"), local(2026, 1, 10, 11))
    lifecycle(local(2026, 2, 1, 0, 5))
    client = api("manager")
    lines = client.get("/api/v1/billing_lines", {"contract_id": contract.pk, "date": "<2026-02-01"}).json()
    assert sorted((line["kind"], line["quantity"], line["amount"], line["currency"]) for line in lines) == [
        ("overage", "1.50", overage, currency),
        ("prepay_purchase", "1.50", prepay, currency),
    ]
    [january] = client.get(f"/api/v1/contracts/{contract.pk}/periods?as_of=2026-01-31T12:00:00Z").json()
    # The period's money is the sum of its rounded parts, as its lines are.
    assert (january["overage_charge"], january["prepay_purchases"], january["total"]) == (overage, prepay, total)
    exported = client.post(
        "/api/v1/billing_exports", {"contract_id": contract.pk}, format="json", HTTP_IDEMPOTENCY_KEY=f"x-{currency}"
    )
    assert exported.status_code == 201, exported.content
