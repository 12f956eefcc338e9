"""GraphQL reads what REST writes (found by an outside tester): money in its currency's minor unit,
an export's lines in REST's order, and nothing of a document with several operations and no
`operationName` runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from billing.models import BillingLine, ContractTemplate
from breaches.models import Breach
from config.api.serializers import AMOUNT_TEXTS
from config.graphql.base import TenantType, camel
from config.graphql.schema import schema  # noqa: F401  (every type built, for the sweep below)
from contracts import terms
from contracts.models import Asset, Contract, Counterparty, LineItem
from events.models import Event
from ledger.models import LedgerEntry
from slas.models import SlaRule
from tests.breaches.factories import T0, make_job
from tests.contracts.factories import make_contract
from tests.graphql.world import build_world
from tests.slas.factories import make_calendar
from workorders.models import VisitPlan, WorkOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, make_member):
    return build_world(org, make_member("admin", org))


# --- money ------------------------------------------------------------------------------------------

MONEY = {
    # model label: (GraphQL get, REST path of an object, its decimal fields GraphQL shows)
    "contracts.Contract": (
        "contract",
        lambda o: f"/api/v1/contracts/{o.pk}",
        ["contract_value", "period_charge", "overage_rate", "prepay_price_per_hour"],
    ),
    "ledger.LedgerEntry": ("ledgerEntry", lambda o: f"/api/v1/ledger_entries/{o.pk}", ["amount"]),
    "billing.BillingLine": ("billingLine", lambda o: f"/api/v1/billing_lines/{o.pk}", ["unit_price", "amount"]),
    "slas.SlaRule": ("slaRule", lambda o: f"/api/v1/sla_rules/{o.pk}", ["monthly_penalty_cap"]),
    "breaches.Breach": ("breach", lambda o: f"/api/v1/breaches/{o.pk}", ["penalty_amount"]),
    # Unit prices (`price_fields`): in the currency's minor units, or with finer places given.
    "contracts.LineItem": (
        "lineItem",
        lambda o: f"/api/v1/contracts/{o.contract_id}/line_items/{o.pk}",
        ["unit_price"],
    ),
    "billing.ContractTemplate": (
        "contractTemplate",
        lambda o: f"/api/v1/contract_templates/{o.pk}",
        ["period_charge", "overage_rate", "prepay_price_per_hour"],
    ),
}


def _stored(world, currency: str) -> None:
    """Amounts the column keeps with four places, in `currency` (a finer unit price included)."""
    contract_id = world["contracts.Contract"][0]
    Contract.objects.filter(pk=contract_id).update(
        currency=currency,
        contract_value=Decimal("18500.5"),
        period_charge=Decimal("2400"),
        overage_rate=Decimal("110.125"),
        prepay_price_per_hour=95,
    )
    LedgerEntry.objects.filter(contract_id=contract_id).update(currency=currency, amount=Decimal("-300"))
    BillingLine.objects.filter(contract_id=contract_id).update(
        currency=currency, quantity=Decimal("2"), unit_price=Decimal("110.125"), amount=Decimal("220.25")
    )
    SlaRule.objects.filter(contract_id=contract_id).update(monthly_penalty_cap=Decimal("1000"))
    Breach.objects.filter(contract_id=contract_id).update(currency=currency, penalty_amount=Decimal("12.3456"))
    LineItem.objects.filter(contract_id=contract_id).update(unit_price=Decimal("2400"))
    ContractTemplate.objects.update(
        currency=currency, period_charge=Decimal("2400"), overage_rate=Decimal("110.125"), prepay_price_per_hour=95
    )


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_money_reads_as_rest_writes_it(gql, world, currency):
    _stored(world, currency)
    client = gql("admin")
    for label, (get, rest_path, names) in MONEY.items():
        for obj in apps.get_model(label).objects.filter(pk__in=world[label]):
            query = f"{{ {get}(id: {obj.pk}) {{ {' '.join(camel(n) for n in names)} }} }}"
            shown = client(query)[get]
            rest = client.client.get(rest_path(obj)).json()
            assert {n: shown[camel(n)] for n in names} == {n: rest[n] for n in names}, label


def test_money_in_minor_units_the_cases_reported(gql, world):
    _stored(world, "EUR")
    contract_id = world["contracts.Contract"][0]
    query = """{ contract(id: %s) { contractValue ledgerEntries { amount } }
                 billingLines { results { unitPrice amount } } }"""
    data = gql("admin")(query % contract_id)
    assert data["contract"]["contractValue"] == "18500.50"
    assert {e["amount"] for e in data["contract"]["ledgerEntries"]} == {"-300.00"}
    # A unit price keeps its finer places (REST's price_text); an amount never does.
    assert data["billingLines"]["results"] == [{"unitPrice": "110.125", "amount": "220.25"}]


@pytest.mark.parametrize(("currency", "cap", "shown"), [("JPY", "2500.9", "2500"), ("KWD", "3.0009", "3.000")])
def test_a_monthly_penalty_cap_reads_as_it_is_enforced(gql, world, currency, cap, shown):
    """Found by an outside tester: JPY 2500.9 read 2501 (half-up) while 2500 is enforced."""
    contract_id = world["contracts.Contract"][0]
    Contract.objects.filter(pk=contract_id).update(currency=currency)
    SlaRule.objects.filter(contract_id=contract_id).update(monthly_penalty_cap=Decimal(cap))
    client = gql("admin")
    rules = list(SlaRule.objects.filter(contract_id=contract_id).values_list("pk", flat=True))
    assert rules
    for pk in rules:
        assert client(f"{{ slaRule(id: {pk}) {{ monthlyPenaltyCap }} }}")["slaRule"] == {"monthlyPenaltyCap": shown}


def _resource_types(cls=TenantType):
    for sub in cls.__subclasses__():
        yield sub
        yield from _resource_types(sub)


def test_every_rest_money_field_is_covered_here():
    """A type whose REST serializer quantises a field (`money_fields`, `price_fields`, `cap_fields`) is in MONEY."""
    for graphql_type in _resource_types():
        view = getattr(graphql_type, "rest_view", None)
        meta = getattr(getattr(view, "serializer_class", None), "Meta", None)
        if meta is None or not hasattr(graphql_type, "__strawberry_definition__"):
            continue
        shown = {f.python_name for f in graphql_type.__strawberry_definition__.fields}
        quantised = {name for mapping in AMOUNT_TEXTS for name in getattr(meta, mapping, {})} & shown
        if quantised:
            _, _, names = MONEY[meta.model._meta.label]
            assert quantised <= set(names), meta.model._meta.label


# --- terms and amendments' changes ----------------------------------------------------------------

AMENDMENT = "... on Amendment { id changes } ... on OperationError { kind message fields { path messages } }"


def test_terms_and_changes_read_as_rest_writes_them_and_round_trip(gql, org):
    # Found by an outside integrator: GraphQL keyed them by the model's names (`counterparty`,
    # `billing_calendar`, `covered_assets`), which createAmendment refuses, and wrote money with
    # the column's four places; REST by the input names, in the currency's minor unit.
    contract = make_contract(org, status="active", expiry_date=dt.date(2028, 12, 31), contract_value=Decimal("12000"),
                             billing_period="monthly", period_charge=Decimal("2400"))  # fmt: skip
    baker.make(LineItem, organization=org, contract=contract, description="Labour", unit_price=Decimal("95"))
    terms.start_versions(contract, origin="creation", now=contract.start_of_day(contract.start_date))
    client = gql("manager")
    rest = client.client.get(f"/api/v1/contracts/{contract.pk}/terms").json()
    listed = client(f"{{ termVersions(filters: {{contractId: {contract.pk}}}) {{ results {{ terms }} }} }}")
    nested = client(f"{{ contract(id: {contract.pk}) {{ termVersions {{ terms }} }} }}")["contract"]
    shown = [v["terms"] for v in rest]
    assert [v["terms"] for v in listed["termVersions"]["results"]] == [v["terms"] for v in nested["termVersions"]]
    assert [v["terms"] for v in nested["termVersions"]] == shown
    assert {"counterparty_id", "billing_calendar_id", "covered_asset_ids"} <= set(shown[0])
    assert (shown[0]["contract_value"], shown[0]["period_charge"]) == ("12000.00", "2400.00")
    assert shown[0]["line_items"][0]["unit_price"] == "95.00"

    changes = {"counterparty_id": contract.counterparty_id, "contract_value": "14000.5"}
    create = 'mutation($changes: JSON!) { createAmendment(contractId: %s, input: {effectiveDate: "2027-03-01", '
    create += 'reason: "x", changes: $changes}) { %s } }'
    created = client(create % (contract.pk, AMENDMENT), {"changes": changes})["createAmendment"]
    assert created["changes"] == {"counterparty_id": contract.counterparty_id, "contract_value": "14000.50"}
    path = f"/api/v1/contracts/{contract.pk}/amendments/{created['id']}"
    assert created["changes"] == client.client.get(path).json()["changes"]
    # What it reads back, it may send back.
    update = "mutation($changes: JSON!) { updateAmendment(id: %s, input: {changes: $changes}) { %s } }"
    updated = client(update % (created["id"], AMENDMENT), {"changes": created["changes"]})["updateAmendment"]
    assert updated["changes"] == created["changes"], updated


# --- several operations -----------------------------------------------------------------------------


def test_several_operations_without_a_name_run_none(gql, world):
    pk = world["breaches.Breach"][0]
    client = gql("operator")
    document = f"mutation B {{ acknowledgeBreach(id: {pk}) {{ __typename }} }} query A {{ me {{ role }} }}"
    events = Event.objects.count()
    response = client.client.post("/api/graphql", {"query": document}, format="json")
    body = response.json()
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [
        "Must provide operation name if query contains multiple operations."
    ]
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert Breach.objects.get(pk=pk).acknowledged_at is None
    assert Event.objects.count() == events
    # Named, only that one runs; one operation needs no name.
    response = client.client.post("/api/graphql", {"query": document, "operationName": "A"}, format="json")
    assert response.json() == {"data": {"me": {"role": "operator"}}}
    assert Breach.objects.get(pk=pk).acknowledged_at is None
    assert client("query A { me { role } }") == {"me": {"role": "operator"}}
    response = client.client.post("/api/graphql", {"query": document, "operationName": "B"}, format="json")
    assert response.json() == {"data": {"acknowledgeBreach": {"__typename": "Breach"}}}
    assert Breach.objects.get(pk=pk).acknowledged_at is not None


# --- an export's lines ------------------------------------------------------------------------------


def test_an_exports_lines_in_rest_and_csv_order(gql, world):
    line = BillingLine.objects.get(pk=world["billing.BillingLine"][0])
    for _ in range(3):
        baker.make(BillingLine, organization=line.organization, contract=line.contract, period=line.period,
                   batch=line.batch, date=line.date, currency="EUR")  # fmt: skip
    batch = line.batch
    client = gql("manager")
    rest = [row["id"] for row in client.client.get(f"/api/v1/billing_exports/{batch.pk}").json()["lines"]]
    csv = client.client.get(f"/api/v1/billing_exports/{batch.pk}", HTTP_ACCEPT="text/csv").content.decode()
    assert [int(row.split(",")[1]) for row in csv.splitlines()[1:]] == rest == sorted(rest)
    assert len(rest) == 4
    single = client(f"{{ billingExport(id: {batch.pk}) {{ lines {{ id }} }} }}")["billingExport"]["lines"]
    listed = client("{ billingExports { results { id lines { id } } } }")["billingExports"]["results"]
    assert [int(row["id"]) for row in single] == rest
    assert [[int(row["id"]) for row in b["lines"]] for b in listed if b["id"] == str(batch.pk)] == [rest]
    # An order of the client's own still applies.
    descending = "lines(order: [{field: ID, direction: DESC}]) { id }"
    newest = client(f"{{ billingExport(id: {batch.pk}) {{ {descending} }} }}")
    assert [int(row["id"]) for row in newest["billingExport"]["lines"]] == rest[::-1]


# --- a work order's references --------------------------------------------------------------------

REFERENCES = "counterparty { id name } asset { id name } visitPlan { id } occurrence contractMatch"


def _planned_jobs(org, count: int) -> list[WorkOrder]:
    """`count` jobs, each of its own contract, counterparty, asset and visit plan occurrence."""
    jobs = []
    for index in range(count):
        contract = make_contract(org, name=f"Refs {index:03d}", status="active")
        asset = baker.make(Asset, organization=org, counterparty=contract.counterparty, name=f"Pump {index}")
        plan = baker.make(VisitPlan, organization=org, contract=contract, asset=asset, summary="Check",
                          recurrence="FREQ=MONTHLY", active_from=T0.date(), generated_until=T0)  # fmt: skip
        job = make_job(contract, T0, now=T0, counterparty=contract.counterparty, asset=asset)
        WorkOrder.objects.filter(pk=job.pk).update(visit_plan=plan, occurrence=T0)
        jobs.append(job)
    return jobs


def test_a_work_orders_references_read_back_as_rest_shows_them(gql, org):
    (job,) = _planned_jobs(org, 1)
    client = gql("operator")
    data = client(f"{{ workOrder(id: {job.pk}) {{ {REFERENCES} }} }}")["workOrder"]
    rest = client.client.get(f"/api/v1/work_orders/{job.pk}").json()
    for name in ("counterparty", "asset"):
        assert data[name] == {"id": str(rest[name]["id"]), "name": rest[name]["name"]}
    assert data["visitPlan"] == {"id": str(rest["visit_plan"]["id"])}
    assert data["occurrence"] == rest["occurrence"]
    assert data["contractMatch"] == rest["contract_match"] and data["contractMatch"]["method"] == "manual"
    # What createWorkOrder writes, it reads back.
    mutation = """mutation { createWorkOrder(input: {contractId: %s, counterpartyId: %s, assetId: %s,
        reportedAt: "2026-03-10T09:00:00Z", priority: "high"})
        { ... on WorkOrder { counterparty { id } asset { id } } } }"""
    created = client(mutation % (job.contract_id, job.counterparty_id, job.asset_id))["createWorkOrder"]
    assert created == {"counterparty": {"id": str(job.counterparty_id)}, "asset": {"id": str(job.asset_id)}}


def test_a_viewer_reads_the_references_rest_lists_for_viewers(gql, org):
    (job,) = _planned_jobs(org, 1)
    client = gql("viewer")
    data = client(f"{{ workOrder(id: {job.pk}) {{ counterparty {{ id }} occurrence contractMatch }} }}")
    assert data["workOrder"]["counterparty"] == {"id": str(job.counterparty_id)}
    # Assets and visit plans are the operator's (their lists, gets and events): refused, as elsewhere.
    for field in ("asset { id serialNumber }", "visitPlan { id }"):
        body = client(f"{{ workOrder(id: {job.pk}) {{ {field} }} }}", errors=True)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def _reference_queries(gql, org, count: int) -> int:
    _planned_jobs(org, count)
    client = gql("operator", org=org)
    with CaptureQueriesContext(connection) as captured:
        data = client(f"{{ workOrders(pagination: {{limit: 100}}) {{ results {{ {REFERENCES} }} }} }}")
    rows = data["workOrders"]["results"]
    assert len(rows) == count and all(row["asset"] and row["visitPlan"] and row["counterparty"] for row in rows)
    return len(captured.captured_queries)


def test_a_work_orders_references_do_not_grow_with_rows(gql, org, other_org):
    assert _reference_queries(gql, other_org, 2) == _reference_queries(gql, org, 12)


# One-line text without control characters (config.api.serializers.single_line), as REST refuses it.
def test_a_name_with_a_line_break_is_refused_as_rest_refuses_it(gql, api, org):
    data = gql("manager")(
        'mutation { createCounterparty(input: {name: "Fleet\\nCo", kind: "customer"}) '
        "{ __typename ... on OperationError { kind message fields { path messages } } } }"
    )["createCounterparty"]
    rest = api("manager").post("/api/v1/counterparties", {"name": "Fleet\nCo", "kind": "customer"}, format="json")
    assert rest.status_code == 422
    assert data["kind"] == "INVALID" and data["message"] == rest.json()["message"]
    assert {f["path"]: f["messages"] for f in data["fields"]} == {"name": rest.json()["errors"]["name"]}
    assert not Counterparty.objects.filter(organization=org).exists()


# A holiday's name in a calendar's JSON is one line too (slas.api.HolidaySerializer), as REST refuses it.
def test_a_holidays_name_with_a_control_character_is_refused_as_rest_refuses_it(gql, api, org):
    calendar = make_calendar(org)
    holidays = [{"date": "2026-12-25", "name": "Xmas\u001bDay"}]
    data = gql("manager")(
        f"mutation($holidays: JSON!) {{ updateCalendar(id: {calendar.pk}, input: {{holidays: $holidays}}) "
        "{ __typename ... on OperationError { kind message fields { path messages } } } }",
        {"holidays": holidays},
    )["updateCalendar"]
    rest = api("manager").patch(f"/api/v1/calendars/{calendar.pk}", {"holidays": holidays}, format="json")
    assert rest.status_code == 422
    assert data["kind"] == "INVALID" and data["message"] == rest.json()["message"]
    fields = {f["path"]: f["messages"] for f in data["fields"]}
    assert fields == {"holidays[0].name": rest.json()["errors"]["holidays[0].name"]}
    calendar.refresh_from_db()
    assert calendar.holidays == []
