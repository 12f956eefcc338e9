"""A contract in GraphQL shows what `GET /api/v1/contracts/{id}` shows, with the same values and to
the same roles: its billing plan, whether it needs the counterparty's signature, the renewal that
replaced it and what it waits for; a page of them in a number of queries that does not grow."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from config.graphql.base import camel
from contracts.api import ContractSerializer
from contracts.models import Amendment, Contract, ContractApproval
from slas.models import Calendar
from tests.contracts.factories import make_contract

pytestmark = pytest.mark.django_db

PLAN = {
    "billing_period": "monthly",
    "period_charge": Decimal("2400.5"),
    "invoice_timing": "in_arrears",
    "hours_per_period": Decimal("40"),
    "rollover_percent": 50,
    "overage_rate": Decimal("110.125"),
    "rounding_minutes": 15,
    "minimum_charge_minutes": 30,
    "out_of_hours_multiplier": Decimal("1.5"),
    "annual_increase_percent": Decimal("3.25"),
    "prepay_hours_per_period": Decimal("10"),
    "prepay_expiry_months": 12,
    "prepay_price_per_hour": Decimal("95"),
    "auto_top_up": {"threshold_hours": "5", "mode": "to", "hours": "20", "price_per_hour": "90.50"},
}
# REST's `{id, name}` references: GraphQL's objects, read here as `{ id name }`.
REFERENCES = {"counterparty", "renewed_from", "renewed_by", "billing_calendar"}
USER_REFERENCES = {"submitted_by"}  # a user's reference names its username
# What GraphQL shows otherwise, as docs/decisions.md says: the covered assets are Asset objects,
# read by operators and up (a viewer is refused, as for every asset).
OTHERWISE = {"covered_assets", "approvals"}


def _renewal_pair(org, make_member):
    """An expired contract and its renewal pending approval: the whole billing plan, a counterparty
    signature required, one of two internal approvals given."""
    calendar = baker.make(Calendar, organization=org, name="Office hours", time_zone="Europe/Amsterdam", hours=[])
    original = make_contract(org, status="expired", start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2025, 12, 31))
    submitter = make_member("manager", org).user
    renewal = make_contract(
        org,
        name="Renewal",
        counterparty=original.counterparty,
        renewed_from=original,
        status="pending_approval",
        requires_counterparty_signature=True,
        billing_calendar=calendar,
        contract_value=Decimal("18500.5"),
        submitted_by=submitter,
        submitted_at=dt.datetime(2025, 12, 1, 9, tzinfo=dt.UTC),
        source="erp",
        source_id="C-9",
        **PLAN,
    )
    _approved_once(renewal, make_member("manager", org).user)
    return original, renewal


def _approved_once(contract, approver) -> None:
    """One of the two internal approvals of the contract's current round."""
    baker.make(
        ContractApproval,
        organization=contract.organization,
        contract=contract,
        approval_round=contract.approval_round,
        approver=approver,
        decision="approved",
        decided_at=dt.datetime(2025, 12, 2, tzinfo=dt.UTC),
    )


def _selection() -> tuple[str, list[str]]:
    """Every field REST shows on a contract, as a GraphQL selection, and the REST names."""
    names = [n for n in ContractSerializer.readable_field_names() if n not in OTHERWISE]
    parts = []
    for name in names:
        graphql = "sourceID" if name == "sourceID" else camel(name)
        if name in REFERENCES:
            graphql += " { id name }"
        elif name in USER_REFERENCES:
            graphql += " { id username }"
        parts.append(graphql)
    return " ".join(parts), names


def _as_rest(name: str, value):
    if value is None:
        return None
    if name in REFERENCES:
        return {"id": int(value["id"]), "name": value["name"]}
    if name in USER_REFERENCES:
        return {"id": int(value["id"]), "name": value["username"]}
    return int(value) if name == "id" else value


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_every_field_rest_shows_a_role_graphql_shows_alike(gql, org, make_member, role):
    original, renewal = _renewal_pair(org, make_member)
    selection, names = _selection()
    client = gql(role)
    for contract in (original, renewal):
        shown = client(f"{{ contract(id: {contract.pk}) {{ {selection} }} }}")["contract"]
        rest = client.client.get(f"/api/v1/contracts/{contract.pk}").json()
        assert set(names) <= set(rest), "REST shows the role every field the selection names"
        for name in names:
            graphql = "sourceID" if name == "sourceID" else camel(name)
            rest_value = rest[name]
            if name in REFERENCES | USER_REFERENCES and rest_value is not None:
                rest_value = {"id": rest_value["id"], "name": rest_value["name"]}
            assert _as_rest(name, shown[graphql]) == rest_value, (contract.name, name)
    # The cases worth a look, spelled out.
    data = client(
        f"""{{ renewal: contract(id: {renewal.pk}) {{ periodCharge overageRate billingPeriod billingCalendar {{ name }}
                 autoTopUp requiresCounterpartySignature waitingFor renewedFrom {{ id }} renewedBy {{ id }} }}
              original: contract(id: {original.pk}) {{ renewedBy {{ id name }} waitingFor }} }}"""
    )
    assert data["renewal"] == {
        "periodCharge": "2400.50",  # unit prices, as REST writes them: minor units, or finer places given
        "overageRate": "110.125",
        "billingPeriod": "monthly",
        "billingCalendar": {"name": "Office hours"},
        "autoTopUp": PLAN["auto_top_up"],
        "requiresCounterpartySignature": True,
        "waitingFor": ["1 more internal approval", "the counterparty's signature"],
        "renewedFrom": {"id": str(original.pk)},
        "renewedBy": None,
    }
    assert data["original"] == {"renewedBy": {"id": str(renewal.pk), "name": "Renewal"}, "waitingFor": []}


PAGE = """{ contracts(pagination: {limit: 100}) { totalCount results {
  id requiresCounterpartySignature waitingFor renewedBy { id name } renewedFrom { id name }
  billingPeriod periodCharge invoiceTiming hoursPerPeriod rolloverPercent overageRate roundingMinutes
  minimumChargeMinutes outOfHoursMultiplier billingCalendar { id name } annualIncreasePercent
  prepayHoursPerPeriod prepayExpiryMonths prepayPricePerHour autoTopUp } } }"""


def _page_queries(gql, org, make_member, pairs: int) -> int:
    calendar = baker.make(Calendar, organization=org, name="Office", time_zone="Europe/Amsterdam", hours=[])
    approver = make_member("manager", org).user
    for index in range(pairs):
        original = make_contract(org, name=f"Old {index:03d}", status="expired")
        renewal = make_contract(org, name=f"New {index:03d}", renewed_from=original, status="pending_approval",
                                billing_calendar=calendar, **PLAN)  # fmt: skip
        _approved_once(renewal, approver)
    client = gql("viewer", org=org)
    with CaptureQueriesContext(connection) as captured:
        data = client(PAGE)
    rows = data["contracts"]["results"]
    assert len(rows) == 2 * pairs == Contract.objects.filter(organization=org).count()
    pending = [row for row in rows if row["renewedFrom"]]
    assert all(row["waitingFor"] == ["1 more internal approval"] and row["billingCalendar"] for row in pending)
    assert sum(1 for row in rows if row["renewedBy"]) == pairs
    return len(captured.captured_queries)


def test_a_page_of_contracts_does_not_grow_with_rows(gql, org, other_org, make_member):
    few = _page_queries(gql, other_org, make_member, 1)
    many = _page_queries(gql, org, make_member, 10)
    # auth (membership), count, the contracts (whole rows: waitingFor reads the terms), then one
    # scoped query per relation: approvals, renewals, renewed contracts, billing calendars.
    assert many == few, (few, many)
    assert many <= 7


# --- approvals: those of the current round, as REST lists them ------------------------------------

APPROVALS = "approvals { approver { id username } decision comment decidedAt }"


def _decide(contract, approver, round_, decision, amendment=None, day=1) -> None:
    baker.make(ContractApproval, organization=contract.organization, contract=contract, amendment=amendment,
               approval_round=round_, approver=approver, decision=decision, comment=f"{decision} in {round_}",
               decided_at=dt.datetime(2026, 2, day, tzinfo=dt.UTC))  # fmt: skip


def _approvals_in_rounds(org, make_member, contract):
    """A rejected round 1 and a current round 2 of the contract, and the rounds of its amendment."""
    first, second, third = (make_member("manager", org).user for _ in range(3))
    Contract.objects.filter(pk=contract.pk).update(approval_round=2, status="pending_approval")
    _decide(contract, first, 1, "rejected", day=1)
    _decide(contract, second, 2, "approved", day=2)
    amendment = baker.make(Amendment, organization=org, contract=contract, number=1, approval_round=2,
                           effective_date=dt.date(2026, 6, 1), status="pending_approval")  # fmt: skip
    _decide(contract, first, 1, "rejected", amendment=amendment, day=3)
    _decide(contract, third, 2, "approved", amendment=amendment, day=4)
    return amendment


def _rest_approvals(rows) -> list[dict]:
    return [
        {
            "approver": {"id": str(r["approver"]["id"]), "username": r["approver"]["name"]},
            "decision": r["decision"],
            "comment": r["comment"],
            "decidedAt": r["decided_at"],
        }
        for r in rows
    ]


def test_approvals_are_those_of_the_current_round_as_rest_lists_them(gql, org, make_member):
    contract = make_contract(org)
    amendment = _approvals_in_rounds(org, make_member, contract)
    client = gql("viewer")
    query = f"""{{ contract(id: {contract.pk}) {{ {APPROVALS} amendments {{ id {APPROVALS} }} }}
                   amendment(id: {amendment.pk}) {{ {APPROVALS} }} }}"""
    data = client(query)
    rest = client.client.get(f"/api/v1/contracts/{contract.pk}").json()
    assert data["contract"]["approvals"] == _rest_approvals(rest["approvals"])
    assert [a["comment"] for a in data["contract"]["approvals"]] == ["approved in 2"]
    rest = client.client.get(f"/api/v1/contracts/{contract.pk}/amendments/{amendment.pk}").json()
    assert data["amendment"]["approvals"] == data["contract"]["amendments"][0]["approvals"]
    assert data["amendment"]["approvals"] == _rest_approvals(rest["approvals"])
    assert [a["comment"] for a in data["amendment"]["approvals"]] == ["approved in 2"]


def _approval_queries(gql, org, make_member, contracts: int) -> int:
    for index in range(contracts):
        _approvals_in_rounds(org, make_member, make_contract(org, name=f"Approved {index:03d}"))
    client = gql("viewer", org=org)
    with CaptureQueriesContext(connection) as captured:
        data = client(
            f"{{ contracts(pagination: {{limit: 100}}) {{ results {{ {APPROVALS} amendments {{ {APPROVALS} }} }} }} }}"
        )
    rows = data["contracts"]["results"]
    assert len(rows) == contracts and all(
        len(r["approvals"]) == len(r["amendments"][0]["approvals"]) == 1 for r in rows
    )
    return len(captured.captured_queries)


def test_a_page_of_approvals_does_not_grow_with_rows(gql, org, other_org, make_member):
    # auth, count, contracts, their approvals (+approver), amendments, the amendments' approvals (+approver)
    assert _approval_queries(gql, other_org, make_member, 1) == _approval_queries(gql, org, make_member, 8) <= 8
