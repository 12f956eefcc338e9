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


def breach_settled_after_the_term(org):
    """A KWD contract of January to March 2026 (100.125 a month), billed and closed on 1 April; job J
    reported on 31 March 10:00 and answered on 1 April 11:00, 24 hours past its 1-hour target: its
    breach (39.629) settled after the term."""
    from breaches.models import Breach
    from tests.breaches.factories import make_job, make_rule, update_job

    contract = approved(org, currency="KWD", period_charge=d("100.125"), expiry_date=dt.date(2026, 3, 31))
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "10.0005", "per_unit_amount": "1.2345",
                                                    "unit_minutes": 60})  # fmt: skip
    job = make_job(contract, local(2026, 3, 31, 10))
    lifecycle(local(2026, 4, 1, 1))
    update_job(job, local(2026, 4, 1, 11), responded_at=local(2026, 4, 1, 11))
    return contract, Breach.objects.get(work_order=job)


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


def test_penalties_after_the_term_are_billed_by_lines_of_their_own(org, api):
    """Found with the test above: the penalties dated after a contract's last billing period were
    in no period's close, so in no billing line at all, while the statement and the balance
    counted them. Hand figures (KWD, a supplier's contract of January to March 2026, 100.125 a
    month, billed and closed on 1 April):

    - job J reported on 31 March 10:00, answered on 1 April 11:00 (a 1-hour target: 24 h late, 24
      started hours at 1.2345 + 10.0005 = 39.6285, half up 39.629): its breach is settled after
      the term, and its penalty posted on 1 April; waived on 3 April, the reversal is posted then;
    - a goodwill penalty of 40.500 posted by hand on 10 April.

    Lines after the term: -39.629 (1 April), +39.629 (3 April), -40.500 (10 April), none of them in
    a period; the periods are as billed (3 x 100.125); the export's total is 300.375 - 40.500 =
    259.875, the lines' sum; April's statement owes 40.500 (no scan ran in March: the breach was
    detected when the job was answered, and waived in its month)."""
    from breaches.services import waive_breach

    contract, breach = breach_settled_after_the_term(org)
    assert (breach.final, breach.penalty_month, str(breach.penalty_amount)) == (True, "2026-04", "39.6290")
    waive_breach(breach=breach, actor=None, reason="Storm", now=local(2026, 4, 3, 9))
    client = api("manager")
    assert hand_penalty(client, contract, "2026-04-10T09:00:00Z", "40.500").status_code == 201
    assert period_money(client, contract) == [(i, "closed", "0.000", "100.125") for i in range(3)]
    url = f"/api/v1/billing_lines?contract_id={contract.pk}&kind=service_credit&sort=date,id"
    after = client.get(url + "&fields=date,amount,period,breaches,description").json()
    shown = [(line["date"], line["amount"], line["period"], line["breaches"]) for line in after]
    assert shown == [
        ("2026-04-01", "-39.629", None, [breach.pk]),
        ("2026-04-03", "39.629", None, [breach.pk]),
        ("2026-04-10", "-40.500", None, []),
    ]
    assert "after the last billing period" in after[0]["description"]
    batch = client.post("/api/v1/billing_exports", {"contract_id": contract.pk}, format="json").json()
    assert (batch["line_count"], batch["totals"]) == (6, {"KWD": "259.875"})
    april = client.get(f"/api/v1/contracts/{contract.pk}/statement?month=2026-04").json()
    assert april["totals"]["KWD"] == {"penalties": "40.500", "posted": "40.500", "waived": "39.629",
                                      "corrections": "0.000"}  # fmt: skip
    # Exactly once: the lifecycle again writes nothing more.
    lifecycle(local(2026, 4, 11, 1))
    assert BillingLine.objects.filter(contract=contract).count() == 6


def test_a_penalty_posted_by_hand_for_a_breach_after_the_term_is_billed_as_posted_by_hand(org, api):
    """Thirteenth round: a manager's penalty with a `breach_id` is owed on top of the breach's own
    (the statement lists it with the penalties posted by hand). After the term its line said "for an
    SLA breach", as the breach's own posting's does; it now says it was posted by hand, and the
    breach's own line still says "an SLA breach" (KWD, January to March 2026, J answered on 1 April
    24 hours late: 39.629; 12.000 posted for it on 10 April)."""
    contract, breach = breach_settled_after_the_term(org)
    client = api("manager")
    body = {"contract_id": contract.pk, "entry_type": "penalty", "hours": "0", "amount": "12.000", "currency": "KWD",
            "breach_id": breach.pk, "occurred_at": "2026-04-10T09:00:00Z", "description": "Agreed extra"}  # fmt: skip
    assert client.post("/api/v1/ledger_entries", body, format="json").status_code == 201
    url = f"/api/v1/billing_lines?contract_id={contract.pk}&kind=service_credit&sort=date,id"
    lines = client.get(url + "&fields=date,amount,breaches,description").json()
    wording = f"{contract.reference}: service credit to the customer for"
    assert [(line["date"], line["amount"], line["breaches"], line["description"]) for line in lines] == [
        ("2026-04-01", "-39.629", [breach.pk], f"{wording} an SLA breach, after the last billing period"),
        ("2026-04-10", "-12.000", [breach.pk], f"{wording} a penalty posted by hand, after the last billing period"),
    ]
    april = client.get(f"/api/v1/contracts/{contract.pk}/statement?month=2026-04").json()
    assert april["totals"]["KWD"] == {"penalties": "51.629", "posted": "12.000", "waived": "0.000",
                                      "corrections": "0.000"}  # fmt: skip
