"""Penalties of breaches (DESIGN §6), as pure functions over Decimals.

Per breach: the clause's fixed amount plus its per-unit amount for every *started* unit of
overage, capped per breach; then capped so that the rule's penalties in one calendar month (in
the contract's time zone) do not exceed the monthly cap. Rounded half-up to the currency's
minor unit (JPY 0, EUR 2, KWD 3).
"""

from __future__ import annotations

import math
from decimal import Decimal

from tenancy.currencies import quantize

ZERO = Decimal(0)


def breach_penalty(clause: dict | None, overage_minutes: int, currency: str) -> Decimal:
    """The penalty of one breach before the monthly cap."""
    if not clause:
        return quantize(ZERO, currency)
    amount = Decimal(str(clause.get("fixed_amount") or 0))
    per_unit = Decimal(str(clause.get("per_unit_amount") or 0))
    if per_unit and overage_minutes > 0:
        units = math.ceil(overage_minutes / int(clause["unit_minutes"]))
        amount += per_unit * units
    cap = clause.get("per_breach_cap")
    if cap is not None:
        amount = min(amount, Decimal(str(cap)))
    return quantize(amount, currency)


def within_monthly_cap(amount: Decimal, already_this_month: Decimal, monthly_cap: Decimal | None, currency) -> Decimal:
    """What is left of `amount` once the month's earlier penalties of the rule are counted."""
    if monthly_cap is None:
        return quantize(amount, currency)
    room = max(ZERO, Decimal(monthly_cap) - already_this_month)
    return quantize(min(amount, room), currency)
