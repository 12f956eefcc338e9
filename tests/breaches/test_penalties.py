"""`breaches.penalties`: the penalty of one breach and the monthly cap (DESIGN §6), as pure functions.

Fixed amount per breach + per-unit amount for every *started* unit of overage, capped per breach,
then capped by what the month's earlier penalties of the rule left; rounded half-up to the
currency's minor unit (JPY 0, EUR 2, KWD 3). A cap is never exceeded, not even by rounding.
"""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from breaches.penalties import breach_penalty, started_units, within_monthly_cap

D = Decimal
CURRENCIES = {"JPY": 0, "EUR": 2, "KWD": 3}


def places(amount: Decimal) -> int:
    return -amount.as_tuple().exponent


# --- started units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overage", "unit", "units"),
    [(0, 30, 0), (1, 30, 1), (29, 30, 1), (30, 30, 1), (31, 30, 2), (60, 30, 2), (61, 30, 3), (7, 1, 7)],
)
def test_a_started_unit_counts_whole(overage, unit, units):
    assert started_units(overage, unit) == units


@given(st.integers(min_value=1, max_value=10**30), st.integers(min_value=1, max_value=10**6))
def test_started_units_is_exact_for_any_size(overage, unit):
    units = started_units(overage, unit)
    assert (units - 1) * unit < overage <= units * unit


# --- one breach ---------------------------------------------------------------------------------


@pytest.mark.parametrize("clause", [None, {}])
@pytest.mark.parametrize(("currency", "expected"), [("JPY", "0"), ("EUR", "0.00"), ("KWD", "0.000")])
def test_no_clause_is_zero_in_the_currencys_minor_unit(clause, currency, expected):
    amount = breach_penalty(clause, 45, currency)
    assert amount == 0 and str(amount) == expected


def test_the_fixed_amount_is_due_for_every_breach_even_without_overage():
    clause = {"fixed_amount": "150"}
    assert breach_penalty(clause, 0, "EUR") == D("150.00")
    assert breach_penalty(clause, 500, "EUR") == D("150.00")


@pytest.mark.parametrize(("overage", "expected"), [(0, "100.00"), (1, "125.00"), (30, "125.00"), (31, "150.00")])
def test_fixed_plus_per_started_unit(overage, expected):
    clause = {"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 30}
    assert breach_penalty(clause, overage, "EUR") == D(expected)


def test_per_unit_without_a_fixed_amount():
    clause = {"per_unit_amount": "12.5", "unit_minutes": 15}
    assert breach_penalty(clause, 46, "EUR") == D("50.00")  # 4 started units


@pytest.mark.parametrize(("overage", "expected"), [(10, "120.00"), (100, "300.00"), (1000, "300.00")])
def test_the_per_breach_cap_applies_to_fixed_plus_units(overage, expected):
    clause = {"fixed_amount": "100", "per_unit_amount": "20", "unit_minutes": 10, "per_breach_cap": "300"}
    assert breach_penalty(clause, overage, "EUR") == D(expected)


def test_a_null_per_breach_cap_is_no_cap_and_a_zero_cap_is_zero():
    clause = {"fixed_amount": "100", "per_unit_amount": "20", "unit_minutes": 10}
    assert breach_penalty({**clause, "per_breach_cap": None}, 100, "EUR") == D("300.00")
    assert breach_penalty({**clause, "per_breach_cap": "0"}, 100, "EUR") == D("0.00")


def test_amounts_given_as_json_numbers_are_exact():
    # 0.1 as a float is 0.1000000000000000055...; the clause means 0.1.
    clause = {"fixed_amount": 0.1, "per_unit_amount": 0.2, "unit_minutes": 1}
    assert breach_penalty(clause, 3, "EUR") == D("0.70")
    assert breach_penalty({"fixed_amount": 7}, 0, "KWD") == D("7.000")


@pytest.mark.parametrize(
    ("currency", "fixed", "expected"),
    [
        ("JPY", "2.5", "3"),  # half-up, not half-even (which gives 2)
        ("JPY", "3.5", "4"),
        ("JPY", "1000.4", "1000"),
        ("EUR", "0.125", "0.13"),  # half-even gives 0.12
        ("EUR", "0.135", "0.14"),
        ("EUR", "10.004", "10.00"),
        ("KWD", "1.2345", "1.235"),  # half-even gives 1.234
        ("KWD", "1.0005", "1.001"),
        ("KWD", "2.0004", "2.000"),
    ],
)
def test_rounding_is_half_up_to_the_minor_unit(currency, fixed, expected):
    amount = breach_penalty({"fixed_amount": fixed}, 0, currency)
    assert str(amount) == expected


def test_rounding_applies_to_the_total_not_to_each_unit():
    # 3 units of 0.125 = 0.375 -> 0.38 (rounding each unit first would give 0.39).
    clause = {"per_unit_amount": "0.125", "unit_minutes": 1}
    assert breach_penalty(clause, 3, "EUR") == D("0.38")


@pytest.mark.parametrize(
    ("currency", "cap", "expected"),
    [("JPY", "1000.5", "1000"), ("EUR", "99.995", "99.99"), ("KWD", "5.0009", "5.000")],
)
def test_a_per_breach_cap_finer_than_the_minor_unit_is_never_exceeded(currency, cap, expected):
    amount = breach_penalty({"fixed_amount": "2000", "per_breach_cap": cap}, 0, currency)
    assert amount == D(expected) and amount <= D(cap)


# --- the monthly cap ----------------------------------------------------------------------------


def test_no_monthly_cap_keeps_the_amount():
    assert within_monthly_cap(D("80.00"), D("1000000"), None, "EUR") == D("80.00")


@pytest.mark.parametrize(
    ("already", "expected"),
    [("0", "80.00"), ("120", "80.00"), ("150", "50.00"), ("199.99", "0.01"), ("200", "0.00"), ("250", "0.00")],
)
def test_the_monthly_cap_leaves_what_earlier_penalties_did_not_use(already, expected):
    assert within_monthly_cap(D("80.00"), D(already), D("200"), "EUR") == D(expected)


def test_a_monthly_cap_finer_than_the_minor_unit_is_never_exceeded():
    # Cap 100.005 EUR: rounding the remaining 100.005 half-up would give 100.01 > the cap.
    amount = within_monthly_cap(D("500"), D("0"), D("100.005"), "EUR")
    assert amount == D("100.00")
    assert within_monthly_cap(D("5000"), D("0"), D("1000.9"), "JPY") == D("1000")


@pytest.mark.parametrize(("currency", "expected"), [("JPY", "1"), ("EUR", "0.50"), ("KWD", "0.500")])
def test_the_monthly_cap_result_is_in_the_minor_unit(currency, expected):
    amount = within_monthly_cap(D("0.5"), D("0"), D("10"), currency)
    assert str(amount) == expected


# --- properties ---------------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False)
clauses = st.fixed_dictionaries(
    {"fixed_amount": amounts, "per_unit_amount": amounts, "unit_minutes": st.integers(1, 240)},
    optional={"per_breach_cap": st.one_of(st.none(), amounts)},
)


@given(clauses, st.integers(0, 100_000), st.integers(0, 100_000), st.sampled_from(sorted(CURRENCIES)))
def test_a_breach_penalty_grows_with_overage_stays_capped_and_is_in_minor_units(clause, a, b, currency):
    low, high = sorted((a, b))
    penalty_low, penalty_high = (breach_penalty(clause, overage, currency) for overage in (low, high))
    assert D(0) <= penalty_low <= penalty_high
    assert places(penalty_high) == CURRENCIES[currency]
    if clause.get("per_breach_cap") is not None:
        assert penalty_high <= clause["per_breach_cap"]


@given(st.lists(amounts, max_size=30), amounts, st.sampled_from(sorted(CURRENCIES)))
def test_a_months_penalties_never_exceed_the_monthly_cap(penalties, cap, currency):
    total = D(0)
    for full in penalties:
        amount = within_monthly_cap(full, total, cap, currency)
        assert D(0) <= amount and places(amount) == CURRENCIES[currency]
        total += amount
    assert total <= cap
