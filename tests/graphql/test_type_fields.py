"""Every field a REST resource shows, its GraphQL type shows too (under its GraphQL name, with the
same value), except where docs/decisions.md says GraphQL shows it otherwise; and the fields added
for that read a page in a number of queries that does not grow with it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from billing.models import BillingLine
from breaches.models import Breach
from config.graphql.base import TenantType
from config.graphql.schema import schema  # noqa: F401  (every type built, for the sweep below)
from ledger.models import LedgerEntry
from slas.models import Calendar, SlaRule
from slas.services import amend_rule
from tests.breaches.factories import make_rule
from tests.contracts.factories import make_contract
from tests.graphql.world import build_world
from workorders.models import SlaClock, WorkOrder

pytestmark = pytest.mark.django_db

# REST field -> how GraphQL shows it instead (never silently absent).
SHOWN_OTHERWISE = {
    # `{id, name}` of a period row whose name is its contract, index and dates: GraphQL's
    # `periodId` and `periodIndex`, the dates in `contractPeriods`.
    ("billing.BillingLine", "period"): {"period_id", "period_index"},
}


def _resource_types(cls=TenantType):
    for sub in cls.__subclasses__():
        yield sub
        yield from _resource_types(sub)


def test_every_field_rest_shows_graphql_shows():
    missing = {}
    for graphql_type in set(_resource_types()):
        serializer = getattr(getattr(graphql_type, "rest_view", None), "serializer_class", None)
        definition = getattr(graphql_type, "__strawberry_definition__", None)
        if serializer is None or definition is None:
            continue
        model = serializer.Meta.model
        if model is not graphql_type.__strawberry_django_definition__.model:
            continue  # a type that borrows a view for its roles (a contract's approvals)
        shown = {f.python_name for f in definition.fields} | {"sourceID"} & {f.graphql_name for f in definition.fields}
        for name in serializer.readable_field_names():
            instead = SHOWN_OTHERWISE.get((model._meta.label, name))
            if name not in shown and not (instead and instead <= shown):
                missing.setdefault(graphql_type.__name__, []).append(name)
    assert missing == {}


@pytest.fixture
def world(org, make_member):
    return build_world(org, make_member("admin", org))


def test_the_added_fields_read_as_rest(gql, world, org):
    client = gql("manager")
    calendar = Calendar.objects.get(pk=world["slas.Calendar"][0])
    Calendar.objects.filter(pk=calendar.pk).update(
        holiday_country="GB", holiday_subdivision="SCT", working_days=["2026-01-02", "2026-12-28"]
    )
    shown = client(f"{{ calendar(id: {calendar.pk}) {{ holidayCountry holidaySubdivision workingDays }} }}")
    rest = client.client.get(f"/api/v1/calendars/{calendar.pk}").json()
    assert shown["calendar"] == {
        "holidayCountry": rest["holiday_country"],
        "holidaySubdivision": rest["holiday_subdivision"],
        "workingDays": rest["working_days"],
    }
    assert rest["working_days"] == ["2026-01-02", "2026-12-28"]

    rule = SlaRule.objects.get(pk=world["slas.SlaRule"][0])
    successor = amend_rule(rule=rule, actor=None, data={"target_minutes": 30},
                           effective_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # fmt: skip
    query = "{ slaRule(id: %s) { nextVersion { id } previousVersion { id } } }"
    for pk in (rule.pk, successor.pk):
        shown = client(query % pk)["slaRule"]
        rest = client.client.get(f"/api/v1/sla_rules/{pk}").json()
        for name, key in (("nextVersion", "next_version"), ("previousVersion", "previous_version")):
            assert (shown[name] and int(shown[name]["id"])) == (rest[key] and rest[key]["id"])
    assert client(query % rule.pk)["slaRule"]["nextVersion"] == {"id": str(successor.pk)}

    entry = LedgerEntry.objects.filter(pk__in=world["ledger.LedgerEntry"]).order_by("id").first()
    LedgerEntry.objects.filter(pk=entry.pk).update(charged_hours=Decimal("1.25"))
    shown = client(f"{{ ledgerEntry(id: {entry.pk}) {{ chargedHours }} }}")["ledgerEntry"]
    assert shown["chargedHours"] == client.client.get(f"/api/v1/ledger_entries/{entry.pk}").json()["charged_hours"]
    assert shown["chargedHours"] == "1.25"

    line = BillingLine.objects.get(pk=world["billing.BillingLine"][0])
    line.breaches.add(*Breach.objects.filter(pk__in=world["breaches.Breach"]))
    shown = client(f"{{ billingLine(id: {line.pk}) {{ periodId periodIndex breaches {{ id }} }} }}")["billingLine"]
    rest = client.client.get(f"/api/v1/billing_lines/{line.pk}").json()
    assert int(shown["periodId"]) == rest["period"]["id"] == line.period_id
    assert [int(b["id"]) for b in shown["breaches"]] == rest["breaches"] == sorted(world["breaches.Breach"])


def _page_queries(gql, org, count: int) -> int:
    for index in range(count):
        contract = make_contract(org, name=f"Page {index:03d}", status="active")
        calendar = baker.make(Calendar, organization=org, name=f"Cal {index}", time_zone="UTC", hours=[],
                              holiday_country="NL", working_days=["2026-04-06"])  # fmt: skip
        rule = make_rule(contract, calendar=calendar)
        amend_rule(rule=rule, actor=None, data={"target_minutes": 30},
                   effective_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # fmt: skip
        job = baker.make(WorkOrder, organization=org, contract=contract, reference=f"J-{index}")
        clock = baker.make(SlaClock, organization=org, work_order=job, rule=rule)
        breach = baker.make(Breach, organization=org, contract=contract, sla_rule=rule, clock=clock, work_order=job,
                            currency="EUR")  # fmt: skip
        line = baker.make(BillingLine, organization=org, contract=contract, period__organization=org,
                          period__contract=contract, date=dt.date(2026, 3, 1), currency="EUR")  # fmt: skip
        line.breaches.add(breach)
        baker.make(LedgerEntry, organization=org, contract=contract, entry_type="work", hours=1,
                   charged_hours=Decimal("1.5"), occurred_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))  # fmt: skip
    client = gql("manager", org=org)
    query = """{ calendars(pagination: {limit: 100}) { results { holidayCountry holidaySubdivision workingDays } }
      slaRules(pagination: {limit: 100}) { results { id nextVersion { id } } }
      ledgerEntries(pagination: {limit: 100}) { results { chargedHours } }
      billingLines(pagination: {limit: 100}) { results { periodId breaches { id } } } }"""
    with CaptureQueriesContext(connection) as captured:
        data = client(query)
    assert [r["workingDays"] for r in data["calendars"]["results"]] == [["2026-04-06"]] * count
    assert sum(1 for r in data["slaRules"]["results"] if r["nextVersion"]) == count
    assert {r["chargedHours"] for r in data["ledgerEntries"]["results"]} == {"1.50"}
    assert all(r["periodId"] and len(r["breaches"]) == 1 for r in data["billingLines"]["results"])
    return len(captured.captured_queries)


def test_the_added_fields_do_not_grow_with_rows(gql, org, other_org):
    few = _page_queries(gql, other_org, 2)
    many = _page_queries(gql, org, 10)
    # auth, then the pages: calendars, rules (+ their successors), entries, billing lines (+ their breaches).
    assert many == few, (few, many)
    assert many <= 7
