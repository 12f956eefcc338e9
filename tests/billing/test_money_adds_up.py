"""Twelfth round, "money adds up": a customer's accountant reconciles `/periods` (REST and
GraphQL), the period's billing lines and the figures stored at its close, with hand figures."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import BillingLine, BillingPeriod
from tests.graphql.conftest import GraphQLClient

from .helpers import d, lifecycle, local
from .test_amended_plans import approved

pytestmark = pytest.mark.django_db


def hand_penalty(client, contract, at: str, amount: str):
    body = {"contract_id": contract.pk, "entry_type": "penalty", "hours": "0", "amount": amount,
            "currency": contract.currency, "occurred_at": at, "description": "Goodwill"}  # fmt: skip
    return client.post("/api/v1/ledger_entries", body, format="json")


def period_money(client, contract) -> list[tuple[int, str, str, str]]:
    """(index, status, service_credits, total) of every period, REST and GraphQL alike."""
    rest = client.get(f"/api/v1/contracts/{contract.pk}/periods").json()
    query = "query($id: ID!) { contractPeriods(contractId: $id) { index status serviceCredits total } }"
    graphql = GraphQLClient(client)(query, {"id": contract.pk})["contractPeriods"]
    shown = [(p["index"], p["status"], p["service_credits"], p["total"]) for p in rest]
    assert [(p["index"], p["status"], str(p["serviceCredits"]), str(p["total"])) for p in graphql] == shown
    return shown


def test_a_penalty_after_the_term_leaves_the_closed_last_period_as_billed(org, api):
    """A KWD contract of three months (January to March 2026), billed and closed: 100.125 a month.
    A penalty of 40.500 posted on 10 April, after the term (a goodwill credit, or a breach settled
    late), was counted in March's `service_credits` (the nearest period): March then read -40.500
    and a total of 59.625 while its lines and the figures stored at its close said 100.125."""
    contract = approved(org, currency="KWD", period_charge=d("100.125"), expiry_date=dt.date(2026, 3, 31))
    lifecycle(local(2026, 4, 1, 1))
    client = api("manager")
    before = period_money(client, contract)
    assert before == [(i, "closed", "0.000", "100.125") for i in range(3)]
    assert hand_penalty(client, contract, "2026-04-10T09:00:00Z", "40.500").status_code == 201
    assert period_money(client, contract) == before
    march = BillingPeriod.objects.get(contract=contract, index=2)
    assert (march.figures["service_credits"], march.figures["total"]) == ("0.000", "100.125")
    lines = BillingLine.objects.filter(contract=contract, period=march).values_list("kind", "amount")
    assert [(kind, str(amount.quantize(d("0.001")))) for kind, amount in lines] == [("period_charge", "100.125")]
    # The statement of April still lists it (the month it was posted in).
    april = client.get(f"/api/v1/contracts/{contract.pk}/statement?month=2026-04").json()
    assert april["totals"]["KWD"]["penalties"] == "40.500"
