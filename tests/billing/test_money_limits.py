"""Money and hours stay within their columns (found by an outside sweep: a manual penalty of
99999999999999.9999, a per-unit penalty or an overage rate of 14 digits passed validation, then
overflowed the column when rounded or multiplied: a 500, and on SQLite a stored row that failed
every later read of the list and every scan of every organization).

What a contract states is at most 10^12 (`MONEY_LIMIT`), hours of one posting or period at most
10^6; what the service computes from them is held below 10^13 (`storable`)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.models import BillingLine
from breaches.models import Breach
from tenancy.currencies import MONEY_LIMIT, storable
from tests.billing.helpers import d, lifecycle, local, plan_contract, work_at
from tests.breaches.factories import active_contract, make_job, make_rule, minutes, scan, update_job

pytestmark = pytest.mark.django_db
LARGEST = Decimal("9999999999999.99")  # the largest computed amount, in cents


@pytest.mark.parametrize(
    ("amount", "code", "stored"),
    [
        (Decimal("12.345"), "EUR", Decimal("12.35")),  # half up, to the minor unit
        (Decimal("10") ** 20, "EUR", LARGEST),
        (-(Decimal("10") ** 30), "EUR", -LARGEST),
        (Decimal("9999999999999.996"), "EUR", LARGEST),  # would round up past the limit
        (Decimal("10") ** 20, "JPY", Decimal("9999999999999")),
        (Decimal("10") ** 20, None, Decimal("9999999999999.9999")),  # a unit price: four places
        (Decimal("110.125"), None, Decimal("110.1250")),
    ],
)
def test_storable_rounds_and_holds_within_the_column(amount, code, stored):
    assert storable(amount, code) == stored


def test_stated_amounts_above_the_limit_are_422_on_their_field(api, org):
    client = api("manager")
    contract = active_contract(org, currency="EUR")
    too_much = str(MONEY_LIMIT + 1)
    entry = {"contract_id": contract.pk, "entry_type": "penalty", "amount": "99999999999999.9999", "currency": "EUR"}
    response = client.post("/api/v1/ledger_entries", entry, format="json")
    assert response.status_code == 422 and "amount" in response.json()["errors"], response.content
    hours = {"contract_id": contract.pk, "entry_type": "credit", "hours": "1000000.01"}
    response = client.post("/api/v1/ledger_entries", hours, format="json")
    assert response.status_code == 422 and "hours" in response.json()["errors"]
    rule = {
        "contract_id": contract.pk, "name": "Big", "metric": "response", "priorities": ["high"], "target_minutes": 60,
        "penalty": {"fixed_amount": "0", "per_unit_amount": "99999999999999", "unit_minutes": 1},
    }  # fmt: skip
    response = client.post("/api/v1/sla_rules", rule, format="json")
    assert response.status_code == 422 and "penalty.per_unit_amount" in response.json()["errors"], response.content
    response = client.post("/api/v1/sla_rules", {**rule, "penalty": {"fixed_amount": 1e15}}, format="json")
    assert response.status_code == 422 and "penalty.fixed_amount" in response.json()["errors"], response.content
    response = client.patch(f"/api/v1/contracts/{contract.pk}", {"overage_rate": too_much}, format="json")
    assert response.status_code == 422 and "overage_rate" in response.json()["errors"]
    top_up = {"threshold_hours": "5", "mode": "to", "hours": "10.005", "price_per_hour": "80"}
    response = client.patch(f"/api/v1/contracts/{contract.pk}", {"auto_top_up": top_up}, format="json")
    assert response.status_code == 422 and "auto_top_up.hours" in response.json()["errors"], response.content
    assert client.get("/api/v1/ledger_entries").status_code == 200


def test_a_penalty_beyond_the_column_is_held_there_and_the_lists_and_scans_go_on(api, org):
    contract = active_contract(org, currency="EUR")
    clause = {"fixed_amount": "0", "per_unit_amount": str(MONEY_LIMIT), "unit_minutes": 1}
    make_rule(contract, target_minutes=60, penalty=clause)
    late = make_job(contract)
    update_job(late, minutes(300), status="in_progress")  # 240 minutes over: 240 × 10^12
    running = make_job(contract)
    assert "Summary" in scan(minutes(1000))  # the running one: 940 minutes over
    amounts = sorted(Breach.objects.values_list("penalty_amount", flat=True))
    assert amounts == [LARGEST, LARGEST], amounts
    assert Breach.objects.get(work_order=running).final is False
    scan(minutes(2000))  # the refresh measures it again
    client = api("manager")
    listed = client.get("/api/v1/breaches")
    assert listed.status_code == 200 and {b["penalty_amount"] for b in listed.json()} == {"9999999999999.99"}
    assert client.get(f"/api/v1/ledger_entries?contract_id={contract.pk}").status_code == 200
    call_command("scan_breaches", stdout=io.StringIO())  # now, every organization: no error


def test_a_billing_line_beyond_the_column_is_held_there(api, org):
    contract = plan_contract(org, hours_per_period=d(1), overage_rate=MONEY_LIMIT, period_charge=MONEY_LIMIT)
    lifecycle(local(2026, 1, 1, 0, 5))
    for day in (10, 11, 12):
        work_at(contract, 1_000_000, local(2026, 1, day, 11))
    lifecycle(local(2026, 2, 1, 0, 5))
    overage = BillingLine.objects.get(contract=contract, kind="overage")
    assert (overage.amount, overage.unit_price) == (LARGEST, MONEY_LIMIT)
    listed = api("manager").get("/api/v1/billing_lines")
    assert listed.status_code == 200 and "9999999999999.99" in {line["amount"] for line in listed.json()}


def test_strings_are_held_to_the_limits_as_numbers_are(api, org):
    """A JSON schema's `maximum` holds numbers only: "9999999.99" hours and "1000000000001" as
    strings passed (found by a second outside sweep), and the limit itself as a string was refused
    with the regular expression as its message."""
    client = api("manager")
    contract = active_contract(org, currency="EUR")
    top_up = {"threshold_hours": "5", "mode": "by", "hours": "9999999.99", "price_per_hour": "80"}
    response = client.patch(f"/api/v1/contracts/{contract.pk}", {"auto_top_up": top_up}, format="json")
    assert response.status_code == 422 and response.json()["errors"]["auto_top_up.hours"] == [
        "Must be at most 1000000."
    ]
    rule = {"contract_id": contract.pk, "name": "Cap", "metric": "response", "target_minutes": 60}
    rule["priorities"] = ["high"]
    at_limit = client.post("/api/v1/sla_rules", {**rule, "penalty": {"fixed_amount": "1000000000000"}}, format="json")
    assert at_limit.status_code == 201, at_limit.content
    over = client.post("/api/v1/sla_rules", {**rule, "penalty": {"fixed_amount": "1000000000001"}}, format="json")
    assert over.status_code == 422
    assert over.json()["errors"]["penalty.fixed_amount"] == ["Must be at most 1000000000000."]
    odd = client.post("/api/v1/sla_rules", {**rule, "penalty": {"fixed_amount": "1e3"}}, format="json")
    assert odd.status_code == 422 and "plain decimal" in odd.json()["errors"]["penalty.fixed_amount"][0]
    budget = client.patch(f"/api/v1/contracts/{contract.pk}", {"hours_budget": "9999999999.99"}, format="json")
    assert budget.status_code == 422 and "hours_budget" in budget.json()["errors"]


def test_a_periods_money_is_held_as_its_billing_line_is(api, org):
    """Found by a second outside sweep: /periods showed a top-up of 10^18 beside its line's
    9999999999999.99."""
    contract = plan_contract(
        org,
        hours_per_period=d(1),
        auto_top_up={"threshold_hours": "0.5", "mode": "by", "hours": "1000000", "price_per_hour": str(MONEY_LIMIT)},
    )
    lifecycle(local(2026, 1, 1, 0, 5))
    work_at(contract, d("0.75"), local(2026, 1, 10, 11))
    line = BillingLine.objects.get(contract=contract, kind="top_up")
    [january] = api("manager").get(f"/api/v1/contracts/{contract.pk}/periods?as_of=2026-01-20T00:00:00Z").json()
    assert january["top_up_purchases"] == str(line.amount.quantize(Decimal("0.01"))) == "9999999999999.99"
    assert january["total"] == "9999999999999.99"
