"""The billing plan on `/api/v1/contracts`: terms like the others (draft only), validated."""

import datetime as dt

import pytest

from billing import periods
from contracts import terms
from contracts.models import Contract
from contracts.services import renew_contract
from slas.models import Calendar
from tests.contracts.factories import make_contract

from .helpers import d, lifecycle, local, plan_contract

pytestmark = pytest.mark.django_db

TOP_UP = {"threshold_hours": "2", "mode": "by", "hours": "5", "price_per_hour": "85"}
PLAN = {
    "billing_period": "monthly",
    "period_charge": "1200.00",
    "invoice_timing": "in_arrears",
    "hours_per_period": "10.00",
    "rollover_percent": 50,
    "overage_rate": "95.00",
    "rounding_minutes": 15,
    "minimum_charge_minutes": 30,
    "annual_increase_percent": "3.00",
    "prepay_hours_per_period": "4.00",
    "prepay_expiry_months": 3,
    "prepay_price_per_hour": "80.00",
    "auto_top_up": {"threshold_hours": "2", "mode": "by", "hours": "5", "price_per_hour": "85"},
}


def test_a_draft_takes_the_plan_and_an_active_contract_refuses_it(api, org):
    calendar = Calendar.objects.create(organization=org, name="Office", time_zone="Europe/Amsterdam", hours=[])
    draft = make_contract(org)
    client = api("manager")
    body = {**PLAN, "out_of_hours_multiplier": "1.50", "billing_calendar_id": calendar.pk}
    response = client.patch(f"/api/v1/contracts/{draft.pk}", body, format="json")
    assert response.status_code == 200, response.content
    got = response.json()
    assert (got["billing_period"], got["rollover_percent"], got["billing_calendar"]["id"]) == (
        "monthly",
        50,
        calendar.pk,
    )
    assert got["auto_top_up"] == {"threshold_hours": "2", "mode": "by", "hours": "5", "price_per_hour": "85"}
    active = plan_contract(org)
    response = client.patch(f"/api/v1/contracts/{active.pk}", {"overage_rate": "99.00"}, format="json")
    assert response.status_code == 409 and "overage_rate" in response.json()["errors"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rollover_percent": 20}, "rollover_percent"),
        ({"billing_period": "weekly"}, "billing_period"),
        ({"period_charge": "10.00"}, "period_charge"),
        ({"billing_period": "monthly", "prepay_hours_per_period": "5.00"}, "prepay_price_per_hour"),
        ({"prepay_expiry_months": 2}, "prepay_expiry_months"),
        ({"out_of_hours_multiplier": "2.00"}, "out_of_hours_multiplier"),
        ({"auto_top_up": {**TOP_UP, "hours": "0"}}, "auto_top_up.hours"),
        ({"auto_top_up": {"threshold_hours": "2", "mode": "by", "hours": "1"}}, "auto_top_up"),
        ({"auto_top_up": {**TOP_UP, "threshold_hours": -1}}, "auto_top_up.threshold_hours"),
        ({"rounding_minutes": -15}, "rounding_minutes"),
    ],
)  # fmt: skip
def test_plan_faults_are_422_naming_the_field(api, org, change, field):
    draft = make_contract(org)
    response = api("manager").patch(f"/api/v1/contracts/{draft.pk}", change, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"], response.json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price_per_hour": "1000000000000000"}, "Must be at most 1000000000000."),
        ({"price_per_hour": 1e15}, "Must be at most 1000000000000."),
        ({"price_per_hour": "85.12345"}, "At most 4 decimal places."),
        ({"hours": "1.123"}, "At most 2 decimal places."),
        ({"hours": 1.125}, "At most 2 decimal places."),  # a JSON number had no pattern: it was stored
        ({"hours": "-5"}, "Must not be negative."),
        ({"threshold_hours": -1}, "Must not be negative."),
        ({"hours": "1_0"}, 'Must be a plain decimal number such as "12.50".'),
        ({"hours": "١٢"}, 'Must be a plain decimal number such as "12.50".'),  # Python's \d took these
        ({"hours": "12\n"}, 'Must be a plain decimal number such as "12.50".'),  # and `$` a line break
        ({"hours": "1e3"}, 'Must be a plain decimal number such as "12.50".'),
    ],
)  # fmt: skip
def test_a_top_up_decimal_names_the_limit_it_breaks(api, org, change, message):
    # Found by an outside tester: size, places and sign were all 'Must be a plain decimal number'.
    draft = make_contract(org)
    top_up = {**TOP_UP, "mode": "to", "hours": "10", **change}
    response = api("manager").patch(f"/api/v1/contracts/{draft.pk}", {"auto_top_up": top_up}, format="json")
    assert response.status_code == 422, response.content
    [(field, messages)] = response.json()["errors"].items()
    assert (field, messages) == (f"auto_top_up.{next(iter(change))}", [message])
    draft.refresh_from_db()
    assert draft.auto_top_up is None


def test_a_penalty_amount_names_the_limit_it_breaks(api, org):
    contract = make_contract(org)
    client = api("manager")
    rule = {"contract_id": contract.pk, "name": "Fast", "metric": "response", "target_minutes": 60}
    rule["priorities"] = ["high"]
    for penalty, message in (
        ({"fixed_amount": "12.34567"}, "At most 4 decimal places."),
        ({"fixed_amount": "-5"}, "Must not be negative."),
        ({"per_breach_cap": "١٠"}, 'Must be a plain decimal number such as "12.50".'),
        ({"per_breach_cap": 10**13}, "Must be at most 1000000000000."),
    ):
        response = client.post("/api/v1/sla_rules", {**rule, "penalty": penalty}, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {f"penalty.{next(iter(penalty))}": [message]}, penalty
    response = client.post("/api/v1/sla_rules", {**rule, "penalty": {"fixed_amount": True}}, format="json")
    assert response.json()["errors"] == {"penalty.fixed_amount": ["True is not of type 'string', 'number'"]}


def test_another_organizations_calendar_is_422(api, org, other_org):
    theirs = Calendar.objects.create(organization=other_org, name="Theirs", time_zone="UTC", hours=[])
    draft = make_contract(org)
    response = api("manager").patch(f"/api/v1/contracts/{draft.pk}", {"billing_calendar_id": theirs.pk}, format="json")
    assert response.status_code == 422 and "billing_calendar_id" in response.json()["errors"]


def test_a_renewal_keeps_the_plan(org, make_member):
    contract = plan_contract(org, hours_per_period=d(10), rollover_percent=40, period_charge=d(500))
    renewal = renew_contract(contract=contract, actor=make_member("manager", org).user)
    renewal = Contract.objects.get(pk=renewal.pk)
    assert (renewal.billing_period, renewal.hours_per_period, renewal.rollover_percent) == ("monthly", 10, 40)
    assert renewal.books_closed_at is None


def test_plan_prices_are_written_as_unit_prices(api, org):
    # Found in review: the plan's prices came with the column's four places ("1200.0000").
    client = api("manager")
    euro, yen = make_contract(org), make_contract(org, currency="JPY")
    body = {"billing_period": "monthly", "period_charge": "1200.5", "overage_rate": "110.125"}
    got = client.patch(f"/api/v1/contracts/{euro.pk}", body, format="json").json()
    assert (got["period_charge"], got["overage_rate"]) == ("1200.50", "110.125")
    yen_body = {**body, "period_charge": "1200", "overage_rate": "1000.5"}
    got = client.patch(f"/api/v1/contracts/{yen.pk}", yen_body, format="json").json()
    assert (got["period_charge"], got["overage_rate"]) == ("1200", "1000.5")  # a rate finer than a yen: kept
    listed = client.get("/api/v1/contracts?fields=id,period_charge&sort=id").json()
    assert [c["period_charge"] for c in listed] == ["1200.50", "1200"]
    template = {"name": "Monthly", "contract_type": "maintenance_agreement", "currency": "EUR", **body}
    created = client.post("/api/v1/contract_templates", template, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["period_charge"], created.json()["overage_rate"]) == ("1200.50", "110.125")
    # A template's line items alike (found by an outside sweep: "12.0000", "12.3450").
    items = [{"description": "Seal", "unit_price": "12"}, {"description": "Bolt", "unit_price": "12.345"}]
    made = client.post(
        "/api/v1/contract_templates", {**template, "name": "With items", "line_items": items}, format="json"
    )
    assert made.status_code == 201, made.content
    assert [i["unit_price"] for i in made.json()["line_items"]] == ["12.00", "12.345"]
    item = {"description": "Seal", "quantity": "4", "unit_price": "12.5"}
    created = client.post(f"/api/v1/contracts/{euro.pk}/line_items", item, format="json")
    assert created.status_code == 201 and created.json()["unit_price"] == "12.50"
    assert client.get(f"/api/v1/contracts/{euro.pk}/line_items").json()[0]["unit_price"] == "12.50"


def escalating(org, **fields) -> Contract:
    """1000.00 a month from 2024-12-01 for two years, +10% a year: 1100.00 in its second year."""
    fields = {"expiry_date": dt.date(2026, 11, 30), **fields}
    contract = plan_contract(
        org, period_charge=d(1000), annual_increase_percent=d(10), hours_per_period=d(5),
        start_date=dt.date(2024, 12, 1), **fields,
    )  # fmt: skip
    contract.refresh_from_db()
    terms.start_versions(contract, origin="creation", now=local(2024, 12, 1))
    return contract


def test_a_renewal_continues_at_the_charge_in_force_on_the_last_day(api, org):
    """Found by an outside test: a renewal copied the base charge (1000.00) and so dropped every
    increase earned (1100.00 on the last day). The renewal starts on the second anniversary of the
    agreement, so that increase is due on its first day (ninth round: it was lost, 1100.00): by
    the clause it charges 1210.00, and the agreement's next anniversary raises that (1331.00); by
    hand: the draft says 1210.00."""
    manager = api("manager")
    clause = escalating(org, auto_renew=True, renewal_term_months=24)
    lifecycle(local(2027, 12, 2, 6))
    renewal = Contract.objects.get(renewed_from=clause)
    assert renewal.status == "active" and renewal.start_date == dt.date(2026, 12, 1)
    assert manager.get(f"/api/v1/contracts/{renewal.pk}").json()["period_charge"] == "1210.00"
    response = manager.get(
        "/api/v1/billing_lines", {"contract_id": f"{clause.pk},{renewal.pk}", "kind": "period_charge", "per_page": 100}
    )
    charges = {line["date"]: line["amount"] for line in response.json()}
    assert (charges["2025-11-01"], charges["2025-12-01"], charges["2026-11-01"]) == ("1000.00", "1100.00", "1100.00")
    assert (charges["2026-12-01"], charges["2027-11-01"], charges["2027-12-01"]) == ("1210.00", "1210.00", "1331.00")

    by_hand = escalating(org)
    response = manager.post(f"/api/v1/contracts/{by_hand.pk}/renew", {}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["start_date"], response.json()["period_charge"]) == ("2026-12-01", "1210.00")
    assert response.json()["annual_increase_percent"] == "10.00"


def test_a_yearly_term_renewed_each_year_rises_each_year(api, org):
    """Found by an outside test (the demo's DEMO-MS-002, 2400.00 a month, +3%): a 12-month term
    renews on the agreement's anniversary, which the original (ended) did not apply and the renewal
    (counting from its own start, a year later: after its expiry) did not either, so the charge
    never rose. Each renewal now starts at the raised charge, by the clause and by hand (REST and
    GraphQL), and the periods and billing lines charge it."""
    manager = api("manager")
    original = plan_contract(
        org, period_charge=d("2400.00"), annual_increase_percent=d(3), hours_per_period=d(5),
        start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2025, 12, 31), auto_renew=True, renewal_term_months=12,
    )  # fmt: skip
    terms.start_versions(original, origin="creation", now=local(2025, 1, 1))
    lifecycle(local(2026, 1, 1, 6))
    first = Contract.objects.get(renewed_from=original)
    lifecycle(local(2027, 1, 1, 6))
    second = Contract.objects.get(renewed_from=first)
    assert (first.start_date, second.start_date) == (dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    assert manager.get(f"/api/v1/contracts/{first.pk}").json()["period_charge"] == "2472.00"
    assert manager.get(f"/api/v1/contracts/{second.pk}").json()["period_charge"] == "2546.16"
    response = manager.get(
        "/api/v1/billing_lines",
        {"contract_id": f"{original.pk},{first.pk},{second.pk}", "kind": "period_charge", "per_page": 100},
    )
    charges = {line["date"]: line["amount"] for line in response.json()}
    assert (charges["2025-12-01"], charges["2026-01-01"], charges["2026-12-01"]) == ("2400.00", "2472.00", "2472.00")
    assert charges["2027-01-01"] == "2546.16"
    shown = [f.as_dict("EUR") for f in periods.compute(first, now=local(2026, 12, 31, 12))]  # REST's /periods
    assert {p["period_charge"] for p in shown} == {"2472.00"} and len(shown) == 12

    query = f"mutation {{ renewContract(id: {second.pk}) {{ ... on Contract {{ startDate periodCharge }} }} }}"
    body = manager.post("/api/graphql", {"query": query}, format="json").json()
    assert body["data"]["renewContract"] == {"startDate": "2028-01-01", "periodCharge": "2622.54"}, body


def test_a_renewal_rises_on_the_anniversaries_of_the_agreement(api, org):
    """An 18-month term: the renewal starts at the charge earned (one increase, on 2025-12-01) and
    rises on the agreement's next anniversary (2026-12-01), as the original would have, not a year
    after its own start."""
    manager = api("manager")
    original = escalating(org, expiry_date=dt.date(2026, 5, 31), auto_renew=True, renewal_term_months=12)
    lifecycle(local(2026, 12, 2, 6))
    renewal = Contract.objects.get(renewed_from=original)
    assert renewal.start_date == dt.date(2026, 6, 1)
    response = manager.get(
        "/api/v1/billing_lines", {"contract_id": renewal.pk, "kind": "period_charge", "per_page": 100}
    )
    charges = {line["date"]: line["amount"] for line in response.json()}
    assert (charges["2026-06-01"], charges["2026-11-01"], charges["2026-12-01"]) == ("1100.00", "1100.00", "1210.00")


def test_a_period_charge_finer_than_its_currency_is_refused(api, org):
    """Found by an outside tester: 1000.5 JPY and 100.005 EUR a period were taken and rounded when
    billed (1001, 100.01), while such a contract_value is a 422. The charge is billed as it stands
    (nothing multiplies it), so it is refused the same way: create, draft edit, currency change,
    amendment, template and instantiation. Rates keep finer places (previous test)."""
    client, admin = api("manager"), api("admin")
    counterparty = make_contract(org).counterparty
    body = {
        "reference": "PC-1", "name": "charge", "contract_type": "service_contract", "counterparty_id": counterparty.pk,
        "counterparty_role": "customer", "start_date": "2027-01-01", "expiry_date": "2027-12-31",
        "billing_period": "monthly",
    }  # fmt: skip
    yen = ["Ensure that there are no more than 0 decimal places for JPY."]
    euro = ["Ensure that there are no more than 2 decimal places for EUR."]
    for currency, charge, fault in (("JPY", "1000.5", yen), ("EUR", "100.005", euro)):
        response = client.post(
            "/api/v1/contracts", {**body, "currency": currency, "period_charge": charge}, format="json"
        )
        assert response.status_code == 422 and response.json()["errors"] == {"period_charge": fault}, response.content
    created = client.post("/api/v1/contracts", {**body, "currency": "EUR", "period_charge": "100.50"}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/contracts/{created.json()['id']}"
    response = client.patch(url, {"period_charge": "100.005"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"period_charge": euro}
    response = client.patch(url, {"currency": "JPY"}, format="json")  # 100.50 EUR is not 101 JPY
    assert response.status_code == 422 and response.json()["errors"] == {"period_charge": yen}
    assert client.patch(url, {"name": "renamed"}, format="json").status_code == 200

    active = plan_contract(org, period_charge=d(1000), expiry_date=dt.date(2028, 12, 31))
    terms.start_versions(active, origin="creation", now=local(2026, 1, 1))
    amendment = {"effective_date": "2027-03-01", "changes": {"period_charge": "1000.001"}, "reason": "more"}
    response = admin.post(f"/api/v1/contracts/{active.pk}/amendments", amendment, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {
        "changes.period_charge": ["Ensure that there are no more than 2 decimal places for EUR."]
    }

    template = {"name": "Monthly", "contract_type": "service_contract", "currency": "JPY", "billing_period": "monthly"}
    response = client.post("/api/v1/contract_templates", {**template, "period_charge": "2400.5"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"period_charge": yen}
    made = client.post("/api/v1/contract_templates", {**template, "period_charge": "2400"}, format="json")
    assert made.status_code == 201, made.content
    instantiate = f"/api/v1/contract_templates/{made.json()['id']}/instantiate"
    start = {"counterparty_id": counterparty.pk, "reference": "PC-2", "start_date": "2027-01-01"}
    response = client.post(instantiate, {**start, "period_charge": "2400.5"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"period_charge": yen}
    response = client.patch(f"/api/v1/contract_templates/{made.json()['id']}", {"currency": "KWD"}, format="json")
    assert response.status_code == 200, response.content  # 2400 JPY is 2400.000 KWD: no finer
    assert not Contract.objects.filter(reference="PC-2").exists()


def test_instantiating_in_a_code_that_is_no_currency_is_told_so(api, org):
    """Found by an outside tester: "eur" got the currency-mismatch message (make a template in
    eur) where a contract's create says what is wrong with the code."""
    client = api("manager")
    counterparty = make_contract(org).counterparty
    template = {"name": "Priced", "contract_type": "service_contract", "currency": "EUR", "billing_period": "monthly",
                "period_charge": "2400.00"}  # fmt: skip
    made = client.post("/api/v1/contract_templates", template, format="json")
    assert made.status_code == 201, made.content
    body = {"counterparty_id": counterparty.pk, "reference": "T-2", "start_date": "2027-01-01", "currency": "eur"}
    response = client.post(f"/api/v1/contract_templates/{made.json()['id']}/instantiate", body, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"currency": ["'eur' is not an ISO 4217 currency code."]}
    response = client.post(
        f"/api/v1/contract_templates/{made.json()['id']}/instantiate", {**body, "currency": "USD"}, format="json"
    )
    assert (
        response.status_code == 422 and "The template's prices are in EUR" in response.json()["errors"]["currency"][0]
    )


NEEDS_PERIODS = ["Needs a billing_period other than none."]


def test_an_overage_rate_needs_billing_periods(api, org):
    """Found by an outside test: a rate without periods let the contract overrun (the overrun is
    allowed because it is billed) but overage is billed when a period closes, and there were none:
    the overrun was never billed. Refused as the other period-bound terms are, everywhere."""
    client, admin = api("manager"), api("admin")
    counterparty = make_contract(org).counterparty
    body = {
        "reference": "OVR-1", "name": "overage no plan", "contract_type": "service_contract",
        "counterparty_id": counterparty.pk, "counterparty_role": "customer", "start_date": "2026-11-01",
        "expiry_date": "2027-10-31", "currency": "EUR", "hours_budget": "10", "overage_rate": "100",
    }  # fmt: skip
    response = client.post("/api/v1/contracts", body, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"overage_rate": NEEDS_PERIODS}
    created = client.post("/api/v1/contracts", {**body, "billing_period": "monthly"}, format="json")
    assert created.status_code == 201, created.content
    response = client.patch(f"/api/v1/contracts/{created.json()['id']}", {"billing_period": "none"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"overage_rate": NEEDS_PERIODS}
    response = client.patch(f"/api/v1/contracts/{make_contract(org).pk}", {"overage_rate": "100"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"overage_rate": NEEDS_PERIODS}

    active = make_contract(org, status="active", expiry_date=dt.date(2028, 12, 31))
    terms.start_versions(active, origin="creation", now=local(2026, 1, 1))
    amendment = {"effective_date": "2027-03-01", "changes": {"overage_rate": "90"}, "reason": "billed"}
    response = admin.post(f"/api/v1/contracts/{active.pk}/amendments", amendment, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"changes.overage_rate": NEEDS_PERIODS}

    template = {"name": "No periods", "contract_type": "service_contract", "currency": "EUR", "overage_rate": "100"}
    response = client.post("/api/v1/contract_templates", template, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"overage_rate": NEEDS_PERIODS}


def test_a_plan_stored_with_an_overage_rate_without_periods_can_still_be_changed(api, org):
    """Rows stored before the rule keep their plan; a write that sets neither the rate nor the
    period is not refused for it, one that sets either is held to the rule."""
    client, admin = api("manager"), api("admin")
    draft = make_contract(org, overage_rate=d(100))
    url = f"/api/v1/contracts/{draft.pk}"
    assert client.patch(url, {"name": "Renamed"}, format="json").status_code == 200
    response = client.patch(url, {"overage_rate": "90"}, format="json")
    assert response.status_code == 422 and response.json()["errors"] == {"overage_rate": NEEDS_PERIODS}
    assert client.patch(url, {"billing_period": "monthly"}, format="json").status_code == 200

    active = make_contract(org, status="active", expiry_date=dt.date(2028, 12, 31), overage_rate=d(100))
    terms.start_versions(active, origin="creation", now=local(2026, 1, 1))
    url = f"/api/v1/contracts/{active.pk}/amendments"
    amendment = {"effective_date": "2027-03-01", "changes": {"hours_budget": "50.00"}, "reason": "more"}
    assert admin.post(url, amendment, format="json").status_code == 201
    amendment["changes"] = {"overage_rate": None}
    assert admin.post(url, amendment, format="json").status_code == 201
