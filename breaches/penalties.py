"""Penalties of breaches (DESIGN §6), as pure functions over Decimals.

Per breach: the clause's fixed amount plus its per-unit amount for every *started* unit of
overage, capped per breach; then capped so that the rule's penalties in one calendar month (in
the contract's time zone) do not exceed the monthly cap. Amounts are rounded half-up to the
currency's minor unit (JPY 0, EUR 2, KWD 3); a cap is never exceeded by that rounding: a cap
finer than the minor unit (JPY 1000.5) counts as the largest whole minor amount within it (1000).
"""

from __future__ import annotations

from decimal import Decimal

from tenancy.currencies import quantize, round_down, storable

ZERO = Decimal(0)


def _cap(value, currency: str) -> Decimal:
    """A cap in the currency's minor unit, rounded down so that it is never exceeded."""
    return round_down(value, currency)


def cap_in_minor_unit(value, currency: str) -> Decimal:
    """A cap as `within_monthly_cap` applies it: in the currency's minor unit, rounded down."""
    return _cap(value, currency)


def per_unit_minutes(clause: dict | None) -> int | None:
    """The unit of overage the clause charges for (each started one), None if it charges per breach
    only: a breach's penalty (`breach_penalty`) moves only when its `started_units` do."""
    if not clause or not Decimal(str(clause.get("per_unit_amount") or 0)):
        return None
    return int(clause["unit_minutes"])


def started_units(overage_minutes: int, unit_minutes: int) -> int:
    """How many units of `unit_minutes` the overage has started (a started unit counts whole)."""
    if overage_minutes <= 0:
        return 0
    return -(-overage_minutes // unit_minutes)


def breach_penalty(clause: dict | None, overage_minutes: int, currency: str) -> Decimal:
    """The penalty of one breach before the monthly cap."""
    if not clause:
        return quantize(ZERO, currency)
    amount = Decimal(str(clause.get("fixed_amount") or 0))
    per_unit = Decimal(str(clause.get("per_unit_amount") or 0))
    if per_unit:
        amount += per_unit * started_units(overage_minutes, int(clause["unit_minutes"]))
    amount = storable(amount, currency)
    cap = clause.get("per_breach_cap")
    if cap is not None:
        amount = min(amount, _cap(cap, currency))
    return amount


def within_monthly_cap(amount: Decimal, already_this_month: Decimal, monthly_cap, currency: str) -> Decimal:
    """What is left of `amount` once the month's earlier penalties of the rule are counted."""
    amount = quantize(amount, currency)
    if monthly_cap is None:
        return amount
    room = max(ZERO, _cap(monthly_cap, currency) - Decimal(already_this_month))
    return min(amount, _cap(room, currency))
